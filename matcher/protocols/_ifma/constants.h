/* RFC 9496 section 4.1 constants in radix 2^52 (generated and checked with Python integers). */
static const uint64_t C_D[5] = {0xb4dca135978a3ULL, 0x4d4141d8ab75eULL, 0x779e89800700aULL, 0xfe738cc740797ULL, 0x052036cee2b6fULL};
static const uint64_t C_SQRT_M1[5] = {0xe1b274a0ea0b0ULL, 0x06ad2fe478c4eULL, 0xdfbd7a72f4318ULL, 0xdf0b2b4d00993ULL, 0x02b8324804fc1ULL};
static const uint64_t C_SQRT_AD_MINUS_ONE[5] = {0x7f6a0497b2e1bULL, 0x0c1b7854bd7e9ULL, 0x1f5d1fdaf9d8eULL, 0x48ac0f3cfcc93ULL, 0x0376931bf2b83ULL};
static const uint64_t C_INVSQRT_A_MINUS_D[5] = {0x8fdaa805d40eaULL, 0x175a4172be99cULL, 0xe01d8409d2f16ULL, 0xfca216c27b91fULL, 0x0786c8905cfafULL};
static const uint64_t C_ONE_MINUS_D_SQ[5] = {0xc09c1945fc176ULL, 0x38cd5e350fe27ULL, 0xe70dfe42c81a1ULL, 0xe0d79994abddbULL, 0x0029072a8b2b3ULL};
static const uint64_t C_D_MINUS_ONE_SQ[5] = {0xd5aaa44ed4d20ULL, 0x2cb01e199931aULL, 0x29b4eebd29e4aULL, 0x22414cdcd32f5ULL, 0x05968b37af66cULL};
static const uint64_t C_D2[5] = {0x69b9426b2f159ULL, 0x9a8283b156ebdULL, 0xef3d13000e014ULL, 0xfce7198e80f2eULL, 0x02406d9dc56dfULL};
static const uint64_t C_MINUS_ONE[5] = {0xfffffffffffecULL, 0xfffffffffffffULL, 0xfffffffffffffULL, 0xfffffffffffffULL, 0x07fffffffffffULL};
static const uint64_t C_ONE[5] = {0x0000000000001ULL, 0x0000000000000ULL, 0x0000000000000ULL, 0x0000000000000ULL, 0x0000000000000ULL};
