"""Name pools for the synthetic data generator (matcher.quality.synth), by locale.

Family and given names as written in their own script. Arabic names come with
the Latin spellings agencies actually use, since Arabic script has no short
vowels and no single romanisation. Female forms of Slavic family names are
derived by the generator (-ov → -ova, -ski → -ska).
"""

from __future__ import annotations

FAMILY: dict[str, str] = {
    "de": "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer Richter "
    "Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt Werner Schmitz "
    "Krause Meier Lehmann Schmid Schulze Maier Köhler Herrmann König Walter Mayer Huber Kaiser Fuchs Peters Lang "
    "Scholz Möller Weiß Jung Hahn Schubert Vogel Friedrich Keller Günther Frank Berger Winkler Roth Beck Lorenz "
    "Baumann Franke Albrecht Schuster Simon Ludwig Böhm Winter Kraus Martin Schumacher Krämer Vogt Stein Jäger "
    "Otto Sommer Groß Seidel Heinrich Brandt Haas Schreiber Graf Schulte Dietrich Ziegler Kuhn Kühn Pohl Engel "
    "Horn Busch Bergmann Voigt Sauer Arnold Wolff Pfeiffer Oberhuber Lindner Eichhorn Rosenthal Hölzl Brunner",
    "pl": "Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański Woźniak Dąbrowski "
    "Kozłowski Jankowski Mazur Wojciechowski Kwiatkowski Krawczyk Kaczmarek Piotrowski Grabowski Zając Pawłowski "
    "Michalski Król Wieczorek Jabłoński Wróbel Nowakowski Majewski Olszewski Jaworski Stępień Malinowski Dudek "
    "Adamczyk Górski Nowicki Pawlak Sikora Witkowski Rutkowski Walczak Baran Michalak Szewczyk Ostrowski "
    "Tomaszewski Pietrzak Duda Zalewski Wróblewski Jasiński Marciniak Bąk Zawadzki Sadowski Jakubowski Wilk "
    "Chmielewski Włodarczyk Borkowski Czarnecki Sawicki Sokołowski Urbański Kubiak Maciejewski Szczepański",
    "ru": "Иванов Петров Смирнов Кузнецов Попов Васильев Соколов Михайлов Новиков Фёдоров Морозов Волков Алексеев "
    "Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров Никитин Захаров Зайцев Соловьёв "
    "Борисов Яковлев Григорьев Романов Воробьёв Сергеев Кузьмин Фролов Александров Дмитриев Королёв Гусев Киселёв "
    "Ильин Максимов Поляков Сорокин Виноградов Ковалёв Белов Медведев Антонов Тарасов Жуков Баранов Филиппов "
    "Комаров Давыдов Беляев Герасимов Богданов Осипов Сидоров Матвеев Титов Марков Миронов Крылов Куликов Карпов "
    "Власов Мельников Денисов Гаврилов Тихонов Казаков Афанасьев Данилов Савельев Тимофеев Фомин Чернов Абрамов "
    "Мартынов Ефимов Федотов Щербаков Назаров Калинин Исаев Быков Маслов Родионов Коновалов Лазарев Воронин "
    "Климов Филатов Пономарёв Голубев Кудрявцев Прохоров Наумов Потапов Журавлёв Овчинников Трофимов Леонов "
    "Соболев Ермаков Колесников Гончаров Емельянов Никифоров Грачёв Котов Гришин Ефремов Архипов Громов Кириллов "
    "Малышев Панов Моисеев Румянцев Акимов Кондратьев Бирюков Горбунов Анисимов Ерёмин Галкин Лукьянов Михеев "
    "Скворцов Юдин Белоусов Нестеров Симонов Прокофьев Харитонов Князев Цветков Левин Воронов Аксёнов Мальцев "
    "Логинов Горшков Савин Краснов Майоров Демидов Елисеев Рыбаков Сафонов Плотников Хохлов Жданов",
    "uk": "Шевченко Коваленко Бондаренко Ткаченко Кравченко Олійник Шевчук Коваль Поліщук Бойко Ткачук Марченко "
    "Мельник Лисенко Руденко Савченко Петренко Мороз Клименко Павленко Кравчук Кузьменко Левченко Гончаренко "
    "Харченко Швець Панченко Сидоренко Мельниченко Литвиненко Остапенко Яковенко Гриценко Демченко Прокопенко "
    "Білик Ковальчук Тимошенко Гуменюк Романенко Карпенко Пономаренко Вакуленко Іваненко Давиденко Мазур "
    "Степаненко Юрченко Захарченко Гнатюк Дорошенко Гаврилюк Симоненко Федоренко Костенко Мартинюк",
    "el": "Παπαδόπουλος Παπαδάκης Γεωργίου Οικονόμου Παπανικολάου Βασιλείου Νικολάου Δημητρίου Ιωάννου "
    "Κωνσταντίνου Μακρής Αθανασίου Χριστοδούλου Αντωνίου Καραγιάννης Παππάς Πετρόπουλος Σταυρόπουλος Αλεξίου "
    "Μιχαηλίδης Κωστόπουλος Παναγιωτόπουλος Ζαχαρίου Θεοδωρίδης Λαμπράκης Μαυρίδης Σπυρόπουλος Γιαννόπουλος "
    "Ανδρέου Αναγνωστόπουλος Κουτσούκος Ραφαηλίδης Τσακίρης Χατζής Μπακογιάννης Ξενάκης Φωτίου Λιάπης",
    "es": "García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez Martín Jiménez Ruiz Hernández "
    "Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez Vázquez Ramos Gil Ramírez Serrano "
    "Blanco Molina Morales Suárez Ortega Delgado Castro Ortiz Rubio Marín Sanz Núñez Iglesias Medina Garrido "
    "Cortés Castillo Santos Lozano Guerrero Cano Prieto Méndez Cruz Calvo Gallego Vidal León Márquez Herrera",
    "tr": "Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan Kılıç Aslan Çetin Kara "
    "Koç Kurt Özkan Şimşek Polat Özcan Korkmaz Çakır Erdoğan Yavuz Can Acar Şen Aktaş Güler Yalçın Güneş Bozkurt "
    "Bulut Keskin Ünal Turan Gül Özer Işık Kaplan Avcı Sarı Tekin Taş Köse Yüksel Ateş Aksoy",
}

GIVEN: dict[str, tuple[str, str]] = {  # (male, female)
    "de": ("Jürgen Hans Peter Klaus Michael Thomas Andreas Stefan Frank Markus Jörg Uwe Lukas Felix Maximilian "
           "Sebastian Tobias Florian Matthias Dieter",
           "Anna Ursula Monika Petra Sabine Claudia Julia Katharina Laura Lena Sophie Jutta Brigitte Sandra Nicole "
           "Jana Birgit Susanne Gisela Bärbel"),
    "pl": ("Piotr Krzysztof Andrzej Tomasz Jan Paweł Michał Marcin Jakub Adam Łukasz Grzegorz Mateusz Wojciech "
           "Mariusz Dariusz Zbigniew Jerzy Maciej Kamil",
           "Anna Katarzyna Maria Małgorzata Agnieszka Barbara Ewa Krystyna Magdalena Elżbieta Joanna Aleksandra "
           "Zofia Monika Beata"),
    "ru": ("Александр Сергей Дмитрий Андрей Алексей Максим Иван Михаил Николай Владимир Евгений Артём Павел Роман "
           "Виктор Юрий Олег Игорь Денис Антон Кирилл Константин Никита Григорий Вадим Егор Илья Борис Фёдор",
           "Анна Елена Ольга Наталья Татьяна Ирина Мария Екатерина Светлана Юлия Анастасия Дарья Ксения Марина "
           "Людмила Галина Вера Надежда Полина Алина"),
    "uk": ("Олександр Сергій Андрій Віталій Юрій Василь Микола Богдан Тарас Олег Дмитро Іван Петро Григорій Михайло",
           "Оксана Олена Ірина Наталія Тетяна Юлія Галина Людмила Марія Світлана"),
    "el": ("Γεώργιος Ιωάννης Κωνσταντίνος Δημήτριος Νικόλαος Παναγιώτης Βασίλειος Χρήστος Αθανάσιος Μιχαήλ "
           "Ευάγγελος Σπυρίδων Αντώνιος Αναστάσιος Θεόδωρος",
           "Μαρία Ελένη Αικατερίνη Βασιλική Σοφία Αγγελική Γεωργία Δήμητρα Κωνσταντίνα Παρασκευή"),
    "es": ("José Antonio Manuel Francisco Juan David Javier Jesús Carlos Miguel Rafael Pedro Ángel Alejandro Pablo "
           "Sergio Fernando Jorge Alberto Luis",
           "María Carmen Ana Isabel Laura Lucía Cristina Marta Elena Pilar Dolores Paula Raquel Rosa Sara"),
    "tr": ("Mehmet Mustafa Ahmet Ali Hüseyin Hasan İbrahim İsmail Osman Yusuf Murat Ömer Ramazan Halil Süleyman "
           "Abdullah Mahmut Recep Salih Fatih Emre Burak",
           "Fatma Ayşe Emine Hatice Zeynep Elif Meryem Şerife Zehra Sultan Hanife Merve Havva Zeliha Esra"),
}

#: Arabic names: script form → Latin spellings in use.
ARABIC_FAMILY: dict[str, tuple[str, ...]] = {
    "المصري": ("Al-Masri", "Elmasry", "Masri"), "حداد": ("Haddad",), "خوري": ("Khoury", "Khouri"),
    "الأحمد": ("Al-Ahmad", "Alahmad"), "الحسن": ("Al-Hassan", "Al-Hasan"), "صالح": ("Saleh", "Salih"),
    "ناصر": ("Nasser", "Nasir"), "عثمان": ("Othman", "Osman"), "الشامي": ("Al-Shami", "Alshami", "Shami"),
    "العلي": ("Al-Ali",), "حمدان": ("Hamdan",), "السيد": ("El-Sayed", "Al-Sayed"), "قاسم": ("Kassem", "Qasim"),
    "عيسى": ("Issa", "Isa"), "منصور": ("Mansour", "Mansur"), "جابر": ("Jaber", "Jabir"),
    "شريف": ("Sherif", "Sharif"), "عباس": ("Abbas",), "الخطيب": ("Al-Khatib", "Khatib"),
    "درويش": ("Darwish", "Darwisch"), "زيدان": ("Zidan", "Zaidan"), "البكري": ("Al-Bakri", "El-Bakry"),
    "الزين": ("Al-Zein", "El-Zein"), "حجازي": ("Hijazi", "Hegazy"), "النجار": ("Al-Najjar", "El-Naggar"),
    "الرفاعي": ("Al-Rifai", "Rifai"), "العمر": ("Al-Omar", "Al-Umar"), "الحلبي": ("Al-Halabi", "Halabi"),
    "القاضي": ("Al-Qadi", "El-Kadi"), "سليمان": ("Suleiman", "Sulaiman"),
    "الحسيني": ("Al-Husseini", "Husseini"), "التميمي": ("Al-Tamimi", "Tamimi"), "الزعبي": ("Al-Zoubi", "Zoubi"),
    "العتيبي": ("Al-Otaibi", "Otaibi"), "الشمري": ("Al-Shammari", "Shammari"), "الجبوري": ("Al-Jubouri", "Al-Jabouri"),
    "البغدادي": ("Al-Baghdadi", "Baghdadi"), "الحمصي": ("Al-Homsi", "Homsi"), "العزاوي": ("Al-Azzawi", "Azzawi"),
    "الساعدي": ("Al-Saadi", "Saadi"), "الأنصاري": ("Al-Ansari", "Ansari"), "الحكيم": ("Al-Hakim", "Hakim"),
    "يونس": ("Younes", "Yunus", "Younis"), "بركات": ("Barakat",), "غانم": ("Ghanem", "Ghanim"), "فرح": ("Farah",),
    "عواد": ("Awad", "Awwad"), "سعد": ("Saad",), "مراد": ("Mourad", "Murad"), "شاهين": ("Shaheen", "Chahine"),
    "الطحان": ("Al-Tahhan", "Tahhan"), "عبدالرحمن": ("Abdel Rahman", "Abdulrahman", "Abd al-Rahman"),
}
ARABIC_GIVEN: tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]] = (
    {
        "محمد": ("Mohammed", "Muhammad", "Mohamed", "Mohamad"), "أحمد": ("Ahmed", "Ahmad"), "علي": ("Ali",),
        "عمر": ("Omar", "Umar"), "خالد": ("Khaled", "Khalid"), "يوسف": ("Youssef", "Yusuf", "Yousef"),
        "حسن": ("Hassan", "Hasan"), "حسين": ("Hussein", "Hussain"), "إبراهيم": ("Ibrahim", "Ebrahim"),
        "محمود": ("Mahmoud", "Mahmud"), "مصطفى": ("Mustafa", "Moustafa"), "سعيد": ("Said", "Saeed"),
        "كريم": ("Karim", "Kareem"), "طارق": ("Tarek", "Tariq"), "بلال": ("Bilal",), "رامي": ("Rami",),
        "عبدالله": ("Abdullah", "Abdallah"), "سامي": ("Sami", "Samy"), "وليد": ("Walid", "Waleed"),
        "فيصل": ("Faisal", "Faysal"), "جمال": ("Jamal", "Gamal"), "زياد": ("Ziad", "Ziyad"), "عادل": ("Adel", "Adil"),
        "ماجد": ("Majed", "Majid"), "نبيل": ("Nabil", "Nabeel"), "سليم": ("Salim", "Selim"),
        "هشام": ("Hisham", "Hicham"), "عماد": ("Imad", "Emad"), "أنس": ("Anas",),
    },
    {
        "فاطمة": ("Fatima", "Fatma"), "مريم": ("Maryam", "Mariam"), "زينب": ("Zainab", "Zeinab"),
        "نور": ("Nour", "Noor"), "ليلى": ("Layla", "Leila"), "سارة": ("Sara", "Sarah"), "هدى": ("Huda", "Hoda"),
        "أمل": ("Amal",), "رانيا": ("Rania",), "سلمى": ("Salma",), "عائشة": ("Aisha", "Aicha", "Ayesha"),
        "خديجة": ("Khadija", "Khadidja"), "ياسمين": ("Yasmin", "Yasmine"), "رنا": ("Rana",), "دينا": ("Dina",),
        "هالة": ("Hala",), "لينا": ("Lina", "Leena"), "منى": ("Mona", "Muna"), "ريم": ("Reem", "Rim"),
        "سميرة": ("Samira", "Sameera"),
    },
)

#: Nationality (ISO alpha-3) of each locale's persons; the first is the most common.
NATIONALITY: dict[str, tuple[str, ...]] = {
    "de": ("DEU", "AUT", "CHE"), "pl": ("POL",), "ru": ("RUS", "BLR", "KAZ"), "uk": ("UKR",), "el": ("GRC", "CYP"),
    "es": ("ESP", "MEX", "ARG", "COL"), "tr": ("TUR",), "ar": ("SYR", "IRQ", "EGY", "MAR", "LBN", "JOR"),
}

#: Share of persons per locale.
LOCALE_WEIGHTS: dict[str, float] = {
    "de": 0.2, "pl": 0.12, "ru": 0.14, "uk": 0.1, "el": 0.08, "es": 0.12, "tr": 0.12, "ar": 0.12,
}
