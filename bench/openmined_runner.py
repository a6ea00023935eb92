"""Runs OpenMined PSI's in-process protocol on two token files; prints JSON.

Executed with the throw-away venv that holds ``openmined-psi`` (it pins an old
protobuf, so it never shares matcher's environment). Same steps as its README:
server setup (GCS, fpr 1e-9), client request, server process, client intersection.
"""

import json
import sys
import time
from pathlib import Path

import private_set_intersection.python as psi


def main() -> None:
    client_file, server_file = sys.argv[1], sys.argv[2]
    client_items = Path(client_file).read_text(encoding="ascii").split("\n")
    server_items = Path(server_file).read_text(encoding="ascii").split("\n")
    t0 = time.perf_counter()
    c0 = time.process_time()
    client = psi.client.CreateWithNewKey(True)
    server = psi.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(1e-9, len(client_items), server_items, psi.DataStructure.GCS)
    request = client.CreateRequest(client_items)
    response = server.ProcessRequest(request)
    intersection = client.GetIntersection(setup, response)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print(json.dumps({
        "seconds": seconds,
        "cpu_seconds": cpu,
        "bytes": len(setup.SerializeToString()) + len(request.SerializeToString()) + len(response.SerializeToString()),
        "intersection": len(intersection),
    }))


if __name__ == "__main__":
    main()
