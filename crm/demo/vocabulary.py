"""The words demo and benchmark data are made of: countries with matching places, names, products.

Plain data, no randomness and no database: the demo seeder (crm.demo.seeding) and the benchmark
generator (bench/generator.py) draw from the same lists so both look like the same business.
In postal code templates `#` stands for a digit and `@` for a capital letter.
"""

import unicodedata
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class City:
    name: str
    region: str
    postal_template: str


@dataclass(frozen=True)
class Country:
    code: str
    language: str
    weight: int  # share of customers, relative
    phone_template: str
    company_suffix: str
    cities: tuple[City, ...]
    female_names: tuple[str, ...]
    male_names: tuple[str, ...]
    last_names: tuple[str, ...]


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


COUNTRIES: tuple[Country, ...] = (
    Country(
        "DE",
        "de",
        20,
        "+49 1## #######",
        "GmbH",
        (
            City("Berlin", "Berlin", "10###"),
            City("Hamburg", "Hamburg", "20###"),
            City("München", "Bayern", "80###"),
            City("Köln", "Nordrhein-Westfalen", "50###"),
            City("Frankfurt am Main", "Hessen", "60###"),
        ),
        _names("Anna Lena Sophie Marie Laura Julia Hannah Lea Katharina Sabine Petra Ursula"),
        _names("Lukas Jonas Felix Maximilian Paul Leon Tobias Stefan Thomas Michael Jürgen Klaus"),
        _names(
            "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch "
            "Richter Wolf Schröder Neumann"
        ),
    ),
    Country(
        "FR",
        "fr",
        13,
        "+33 6 ## ## ## ##",
        "SARL",
        (
            City("Paris", "Île-de-France", "750##"),
            City("Lyon", "Auvergne-Rhône-Alpes", "6900#"),
            City("Marseille", "Provence-Alpes-Côte d'Azur", "130##"),
            City("Toulouse", "Occitanie", "310##"),
            City("Lille", "Hauts-de-France", "590##"),
        ),
        _names("Camille Léa Manon Chloé Emma Inès Sarah Julie Claire Nathalie Isabelle Céline"),
        _names(
            "Louis Hugo Lucas Jules Gabriel Arthur Nicolas Julien Thomas Antoine Pierre Olivier"
        ),
        _names(
            "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon "
            "Laurent Lefebvre Michel Garcia"
        ),
    ),
    Country(
        "GB",
        "en",
        12,
        "+44 7### ######",
        "Ltd",
        (
            City("London", "Greater London", "SW# #@@"),
            City("Manchester", "Greater Manchester", "M## #@@"),
            City("Edinburgh", "Scotland", "EH# #@@"),
            City("Cardiff", "Wales", "CF## #@@"),
            City("Bristol", "South West England", "BS# #@@"),
        ),
        _names("Olivia Amelia Isla Ava Emily Sophie Grace Charlotte Jessica Rachel Helen Emma"),
        _names("Oliver George Harry Jack Charlie Thomas James William Daniel Samuel David Andrew"),
        _names(
            "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts "
            "Walker Wright Robinson Thompson"
        ),
    ),
    Country(
        "US",
        "en",
        14,
        "+1 ### ### ####",
        "Inc.",
        (
            City("New York", "New York", "100##"),
            City("Los Angeles", "California", "900##"),
            City("Chicago", "Illinois", "606##"),
            City("Houston", "Texas", "770##"),
            City("Seattle", "Washington", "981##"),
        ),
        _names("Emma Olivia Ava Sophia Isabella Mia Abigail Emily Madison Jennifer Ashley Megan"),
        _names("Liam Noah William James Benjamin Mason Ethan Michael Alexander Daniel Ryan Tyler"),
        _names(
            "Smith Johnson Williams Brown Jones Miller Davis Garcia Rodriguez Wilson Martinez "
            "Anderson Taylor Moore Jackson"
        ),
    ),
    Country(
        "ES",
        "es",
        9,
        "+34 6## ### ###",
        "S.L.",
        (
            City("Madrid", "Comunidad de Madrid", "280##"),
            City("Barcelona", "Cataluña", "080##"),
            City("Valencia", "Comunidad Valenciana", "460##"),
            City("Sevilla", "Andalucía", "410##"),
            City("Bilbao", "País Vasco", "480##"),
        ),
        _names("Lucía María Paula Laura Marta Carmen Sara Elena Alba Cristina Ana Isabel"),
        _names("Hugo Daniel Pablo Alejandro Álvaro Adrián David Javier Sergio Carlos Manuel Jorge"),
        _names(
            "García González Rodríguez Fernández López Martínez Sánchez Pérez Gómez Martín "
            "Jiménez Ruiz Hernández Díaz Moreno"
        ),
    ),
    Country(
        "IT",
        "it",
        9,
        "+39 3## ### ####",
        "S.r.l.",
        (
            City("Roma", "Lazio", "001##"),
            City("Milano", "Lombardia", "201##"),
            City("Napoli", "Campania", "801##"),
            City("Torino", "Piemonte", "101##"),
            City("Bologna", "Emilia-Romagna", "401##"),
        ),
        _names(
            "Giulia Sofia Aurora Alice Ginevra Emma Giorgia Martina Chiara Francesca Elena Sara"
        ),
        _names(
            "Leonardo Francesco Alessandro Lorenzo Mattia Andrea Gabriele Riccardo Marco Luca "
            "Giuseppe Matteo"
        ),
        _names(
            "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno "
            "Gallo Conti Costa Giordano"
        ),
    ),
    Country(
        "NL",
        "nl",
        7,
        "+31 6 ########",
        "B.V.",
        (
            City("Amsterdam", "Noord-Holland", "10## @@"),
            City("Rotterdam", "Zuid-Holland", "30## @@"),
            City("Utrecht", "Utrecht", "35## @@"),
            City("Eindhoven", "Noord-Brabant", "56## @@"),
            City("Groningen", "Groningen", "97## @@"),
        ),
        _names("Emma Julia Sophie Anna Lisa Eva Sanne Fleur Lotte Anouk Femke Noor"),
        _names("Daan Sem Lucas Levi Thijs Jesse Bram Ruben Lars Sander Joost Pieter"),
        (
            "de Jong",
            "Jansen",
            "de Vries",
            "van den Berg",
            "van Dijk",
            "Bakker",
            "Janssen",
            "Visser",
            "Smit",
            "Meijer",
            "de Boer",
            "Mulder",
            "Bos",
            "Vos",
            "Peters",
        ),
    ),
    Country(
        "SE",
        "sv",
        5,
        "+46 7# ### ## ##",
        "AB",
        (
            City("Stockholm", "Stockholms län", "1## ##"),
            City("Göteborg", "Västra Götalands län", "4## ##"),
            City("Malmö", "Skåne län", "2## ##"),
            City("Uppsala", "Uppsala län", "75# ##"),
            City("Linköping", "Östergötlands län", "58# ##"),
        ),
        _names("Alice Maja Elsa Astrid Wilma Freja Ebba Saga Linnea Karin Ingrid Sofia"),
        _names("William Hugo Lucas Liam Oscar Elias Axel Erik Johan Anders Lars Nils"),
        _names(
            "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson "
            "Gustafsson Pettersson Jonsson Lindberg Lindqvist Berg"
        ),
    ),
    Country(
        "PL",
        "pl",
        6,
        "+48 ### ### ###",
        "Sp. z o.o.",
        (
            City("Warszawa", "Mazowieckie", "0#-###"),
            City("Kraków", "Małopolskie", "3#-###"),
            City("Wrocław", "Dolnośląskie", "5#-###"),
            City("Gdańsk", "Pomorskie", "80-###"),
            City("Poznań", "Wielkopolskie", "6#-###"),
        ),
        _names("Zuzanna Julia Maja Zofia Hanna Lena Alicja Maria Amelia Katarzyna Agnieszka Anna"),
        _names(
            "Antoni Jan Jakub Aleksander Franciszek Szymon Filip Mikołaj Piotr Tomasz Marek Paweł"
        ),
        _names(
            "Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński "
            "Szymański Woźniak Dąbrowski Kozłowski Jankowski Mazur Kwiatkowski"
        ),
    ),
    Country(
        "CA",
        "en",
        5,
        "+1 ### ### ####",
        "Inc.",
        (
            City("Toronto", "Ontario", "M#@ #@#"),
            City("Montréal", "Québec", "H#@ #@#"),
            City("Vancouver", "British Columbia", "V#@ #@#"),
            City("Calgary", "Alberta", "T#@ #@#"),
            City("Ottawa", "Ontario", "K#@ #@#"),
        ),
        _names("Olivia Emma Charlotte Amelia Ava Chloé Florence Sophie Emily Sarah Megan Julie"),
        _names("Noah Liam William Jacob Benjamin Logan Nathan Félix Samuel Ethan Owen Gabriel"),
        _names(
            "Smith Brown Tremblay Martin Roy Wilson MacDonald Gagnon Johnson Taylor Côté "
            "Campbell Anderson Leblanc Lee"
        ),
    ),
)

INDUSTRIES = (
    "Retail",
    "Manufacturing",
    "Software",
    "Hospitality",
    "Healthcare",
    "Education",
    "Logistics",
    "Construction",
    "Finance",
    "Media",
    "Sports & Leisure",
    "Agriculture",
)
COMPANY_WORDS = (
    (
        "Nord",
        "Blue",
        "Alpen",
        "Sun",
        "River",
        "Oak",
        "Silver",
        "Stone",
        "Bright",
        "Green",
        "Iron",
        "Cedar",
        "Harbor",
        "Maple",
        "Coral",
    ),
    (
        "wind",
        "line",
        "works",
        "field",
        "point",
        "bridge",
        "gate",
        "craft",
        "wave",
        "peak",
        "stone",
        "light",
        "path",
        "forge",
        "haven",
    ),
)

# Eight categories of five products: (sku, name, category, price).
PRODUCTS: tuple[tuple[str, str, str, Decimal], ...] = tuple(
    (f"{category[:3].upper()}-{i + 1:03d}", name, category, Decimal(price))
    for category, items in (
        (
            "shoes",
            (
                ("Trail Runner 2", "129.90"),
                ("City Sneaker", "89.90"),
                ("Leather Boot", "159.00"),
                ("Sandal Breeze", "49.90"),
                ("Kids Sneaker", "54.90"),
            ),
        ),
        (
            "apparel",
            (
                ("Merino T-Shirt", "39.90"),
                ("Rain Jacket", "149.00"),
                ("Denim Jeans", "79.90"),
                ("Hoodie", "59.90"),
                ("Wool Sweater", "99.00"),
            ),
        ),
        (
            "accessories",
            (
                ("Leather Belt", "35.00"),
                ("Canvas Backpack", "69.90"),
                ("Sunglasses", "89.00"),
                ("Wool Beanie", "24.90"),
                ("Wallet", "45.00"),
            ),
        ),
        (
            "outdoor",
            (
                ("Two-Person Tent", "249.00"),
                ("Sleeping Bag", "129.00"),
                ("Trekking Poles", "79.90"),
                ("Headlamp", "34.90"),
                ("Water Filter", "44.90"),
            ),
        ),
        (
            "electronics",
            (
                ("Wireless Earbuds", "99.00"),
                ("Smartwatch", "249.00"),
                ("Action Camera", "299.00"),
                ("Power Bank", "39.90"),
                ("Bike Computer", "179.00"),
            ),
        ),
        (
            "home",
            (
                ("Scented Candle", "19.90"),
                ("Linen Bedding Set", "129.00"),
                ("Ceramic Mug Set", "29.90"),
                ("Throw Blanket", "59.90"),
                ("Desk Lamp", "69.90"),
            ),
        ),
        (
            "beauty",
            (
                ("Face Cream", "34.90"),
                ("Shampoo Bar", "12.90"),
                ("Perfume", "79.00"),
                ("Lip Balm Trio", "9.90"),
                ("Sunscreen SPF50", "19.90"),
            ),
        ),
        (
            "sports",
            (
                ("Yoga Mat", "39.90"),
                ("Dumbbell Set", "89.00"),
                ("Tennis Racket", "139.00"),
                ("Football", "29.90"),
                ("Cycling Helmet", "99.00"),
            ),
        ),
    )
    for i, (name, price) in enumerate(items)
)
CATEGORIES = tuple(dict.fromkeys(p[2] for p in PRODUCTS))

# Interests steer which categories a customer buys from; status tags carry no category.
INTERESTS: dict[str, tuple[str, ...]] = {
    "running": ("shoes", "sports"),
    "hiking": ("outdoor", "shoes"),
    "fashion": ("apparel", "accessories"),
    "tech": ("electronics",),
    "home-decor": ("home",),
    "wellness": ("beauty", "sports"),
    "cycling": ("sports", "electronics"),
}
STATUS_TAGS = ("vip", "newsletter", "lead", "wholesale")

CHANNELS = (("online", 55), ("store", 30), ("marketplace", 8), ("phone", 5), ("other", 2))
PROMOTION_CODES = ("WELCOME10", "SPRING20", "SUMMER15", "BLACKFRIDAY", "VIP25", "FREESHIP")
SOURCES = (
    ("web_form", 35),
    ("store", 20),
    ("referral", 10),
    ("import", 12),
    ("event", 6),
    ("social", 12),
    ("partner", 5),
)
INCOME_BANDS = (
    ("low", 15),
    ("lower_middle", 25),
    ("middle", 30),
    ("upper_middle", 20),
    ("high", 10),
)
GENDERS = (("female", 48), ("male", 46), ("non_binary", 2), ("undisclosed", 4))
LOYALTY_TIERS = (("bronze", 50), ("silver", 30), ("gold", 15), ("platinum", 5))
EVENT_TYPES = (
    ("page_view", 55),
    ("email_open", 18),
    ("email_click", 8),
    ("add_to_cart", 9),
    ("search", 7),
    ("wishlist_add", 3),
)
JOB_TITLES = (
    "Buyer",
    "Store Manager",
    "Head of Purchasing",
    "Office Manager",
    "CEO",
    "Marketing Lead",
    "Operations Manager",
)

_ASCII_FOLD = str.maketrans({"ß": "ss", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae"})


def ascii_slug(text: str) -> str:
    """Lower-case ASCII for e-mail local parts and web addresses: 'Dąbrowski' -> 'dabrowski'."""
    folded = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD))
    return "".join(ch for ch in folded.lower() if ch.isascii() and ch.isalnum())
