"""Category-neutral sentence templates, phrase banks and text noise for merchant descriptions.

Templates use ``{name}``, ``{kind}``, ``{products}``, ``{place}``, ``{verb}``, ``{channel}``,
``{customers}``, ``{years}``, ``{staff}``, ``{volume}``, ``{ticket}`` and ``{year}``. Nothing here
says which category a business is in; that comes from ``vocabulary.BANKS``.
"""

from __future__ import annotations

import random

IDENTITY = (
    "We are {a_adj}{kind}{place}.",
    "{name} is {a_adj}{kind}{place}.",
    "Founded in {year}, {name} is {a_adj}{kind}{place}.",
    "{Adj}{kind}{place}.",
    "We run {a_adj}{kind}{place}.",
    "Our company operates as {a_adj}{kind}{place}.",
    "{name} operates as {a_adj}{kind}.",
    "I own {a_adj}{kind}{place}.",
    "{Adj}{kind} serving {customers}.",
    "Business type: {kind}.",
    "{name} - {kind}{place}.",
    "We're {a_adj}{kind} and have been trading for {years}.",
    "The merchant is {a_adj}{kind}{place}.",
    "Hi, we are {name}, {a_adj}{kind}{place}.",
    "{A_adj}{kind} run by {staff} people{place}.",
)

OFFER = (
    "We {verb} {products}{channel}.",
    "We {verb} {products} to {customers}{channel}.",
    "Main products: {products}.",
    "Our customers buy {products}{channel}.",
    "Products and services include {products}.",
    "Revenue comes mostly from {products}.",
    "The business {verbs} {products}{channel}.",
    "{Verbing} {products}{channel}.",
    "Core offering is {products}.",
    "We mainly {verb} {products}, mostly to {customers}.",
    "Selling {products}{channel}.",
    "Our range covers {products}.",
    "What we sell: {products}.",
    "Customers come to us for {products}.",
)

# (base, third person, -ing) forms.
VERBS = (
    ("sell", "sells", "selling"),
    ("offer", "offers", "offering"),
    ("provide", "provides", "providing"),
    ("supply", "supplies", "supplying"),
    ("stock", "stocks", "stocking"),
    ("distribute", "distributes", "distributing"),
    ("market", "markets", "marketing"),
    ("deliver", "delivers", "delivering"),
)

CHANNELS = (
    " through our website",
    " online",
    " via our Shopify store",
    " on Amazon and eBay",
    " through our mobile app",
    " at our storefront and online",
    " by phone and email",
    " through social media",
    " at trade shows and events",
    " via Instagram and TikTok",
    " through a WooCommerce site",
    " over the phone",
    " through resellers",
    "",
    "",
    "",
)

CUSTOMERS = (
    "consumers in the US",
    "customers across Europe",
    "small businesses",
    "local customers",
    "customers worldwide",
    "members",
    "repeat customers",
    "customers in Canada and the US",
    "B2B clients",
    "younger shoppers",
    "retirees",
    "students",
    "families",
    "online shoppers",
    "corporate clients",
    "tourists",
    "customers in the UK",
)

ADJECTIVES = (
    "",
    "",
    "",
    "",
    "small ",
    "family-owned ",
    "growing ",
    "independent ",
    "new ",
    "well-established ",
    "boutique ",
    "online ",
    "fast-growing ",
    "local ",
    "premium ",
    "licensed ",
    "women-owned ",
)

PLACES = (
    "",
    "",
    " based in {city}",
    " in {city}",
    " located in {city}",
    " headquartered in {city}",
    " operating out of {city}",
    " with offices in {city}",
)

FILLERS = (
    "We have been in business for {years}.",
    "The company has {staff} employees.",
    "Monthly card sales are around ${volume}.",
    "We accept Visa, Mastercard and Amex.",
    "Customer support is available by email and chat.",
    "We want to switch payment processors to lower our fees.",
    "Average order value is about ${ticket}.",
    "Refunds are handled within 5-7 business days.",
    "Most of our sales happen on weekends.",
    "We previously processed with Stripe and PayPal.",
    "We are a family-owned business.",
    "Chargebacks have historically been low.",
    "Our team is {staff} people.",
    "Expected volume is ${volume} per month.",
    "We started trading in {year}.",
    "Most customers find us through Google search.",
    "We are expanding into new markets next year.",
    "Orders are processed within one business day.",
    "Seasonal peaks are in November and December.",
    "Recurring customers make up about half of our revenue.",
)

CLOSERS = (
    "Thanks.",
    "Please let me know if you need more info.",
    "Happy to provide documents on request.",
    "Looking forward to working with you.",
    "Thank you for reviewing our application.",
    "Website is live and ready for review.",
)

# ISO country code -> (weight, cities, top-level domain, company suffixes).
COUNTRIES: dict[str, tuple[float, tuple[str, ...], str, tuple[str, ...]]] = {
    "US": (
        0.40,
        (
            "Austin",
            "Denver",
            "Miami",
            "Chicago",
            "Seattle",
            "Brooklyn",
            "Phoenix",
            "Atlanta",
            "Portland",
            "San Diego",
            "Nashville",
            "Columbus",
        ),
        ".com",
        ("LLC", "Inc.", "Co."),
    ),
    "GB": (
        0.10,
        ("London", "Manchester", "Leeds", "Bristol", "Glasgow", "Brighton"),
        ".co.uk",
        ("Ltd", "Limited"),
    ),
    "CA": (0.07, ("Toronto", "Vancouver", "Montreal", "Calgary", "Ottawa"), ".ca", ("Inc.", "Ltd")),
    "DE": (0.07, ("Berlin", "Hamburg", "Munich", "Cologne", "Leipzig"), ".de", ("GmbH", "UG")),
    "FR": (0.05, ("Paris", "Lyon", "Marseille", "Bordeaux"), ".fr", ("SARL", "SAS")),
    "NL": (0.04, ("Amsterdam", "Rotterdam", "Utrecht"), ".nl", ("B.V.",)),
    "AU": (0.05, ("Sydney", "Melbourne", "Brisbane", "Perth"), ".com.au", ("Pty Ltd",)),
    "IE": (0.03, ("Dublin", "Cork", "Galway"), ".ie", ("Ltd",)),
    "ES": (0.03, ("Madrid", "Barcelona", "Valencia"), ".es", ("S.L.",)),
    "IT": (0.03, ("Milan", "Rome", "Turin"), ".it", ("S.r.l.",)),
    "SE": (0.02, ("Stockholm", "Gothenburg"), ".se", ("AB",)),
    "PL": (0.02, ("Warsaw", "Krakow"), ".pl", ("sp. z o.o.",)),
    "MT": (0.015, ("Valletta", "Sliema"), ".com.mt", ("Ltd",)),
    "CY": (0.015, ("Limassol", "Nicosia"), ".com.cy", ("Ltd",)),
    "EE": (0.01, ("Tallinn",), ".ee", ("OU",)),
    "SG": (0.02, ("Singapore",), ".sg", ("Pte. Ltd.",)),
    "HK": (0.015, ("Hong Kong",), ".hk", ("Limited",)),
    "CN": (0.01, ("Guangzhou", "Shenzhen"), ".cn", ("Co., Ltd.",)),
    "IN": (0.02, ("Mumbai", "Bangalore", "Delhi"), ".in", ("Pvt Ltd",)),
    "CW": (0.005, ("Willemstad",), ".cw", ("N.V.",)),
    "VU": (0.003, ("Port Vila",), ".vu", ("Ltd",)),
    "RU": (0.005, ("Moscow",), ".ru", ("OOO",)),
}

NAME_WORDS = (
    "Maple",
    "Harbor",
    "Urban",
    "Blue",
    "North",
    "Summit",
    "Bright",
    "Golden",
    "Prime",
    "Silver",
    "Atlas",
    "Evergreen",
    "Lighthouse",
    "Pioneer",
    "Red Fox",
    "Cedar",
    "Granite",
    "Willow",
    "Coastal",
    "Metro",
    "Apex",
    "Nova",
    "Orchid",
    "Sunset",
    "Riverside",
    "Horizon",
    "Oakwood",
    "Bluebird",
    "Copper",
    "Juniper",
    "Falcon",
    "Lotus",
    "Peak",
    "True",
    "Happy",
    "Kind",
)
SURNAMES = (
    "Miller",
    "Patel",
    "Nguyen",
    "Garcia",
    "Schmidt",
    "Rossi",
    "Kowalski",
    "Murphy",
    "Cohen",
    "Okafor",
    "Larsen",
    "Dubois",
    "Tanaka",
    "Silva",
    "Kim",
    "Baker",
    "Hughes",
    "Novak",
)
GENERIC_NOUNS = ("Company", "Group", "Enterprises", "Trading", "Holdings", "Collective", "Co")

ABBREVIATIONS = (
    (" and ", " & "),
    (" with ", " w/ "),
    (" business", " biz"),
    (" customers", " custs"),
    (" international", " intl"),
    (" products", " prods"),
    (" approximately", " approx"),
    (" per month", "/mo"),
    (" years", " yrs"),
    (" information", " info"),
    (" through ", " thru "),
    (" you ", " u "),
    (" are ", " r "),
)


def capitalise(text: str) -> str:
    """``text`` with its first character upper-cased (the rest untouched)."""
    return text[:1].upper() + text[1:]


def join_products(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:  # swap two adjacent letters
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:  # drop a letter
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]  # double a letter


def add_text_noise(text: str, rng: random.Random) -> str:
    """Apply one or two informal edits: typos, abbreviations, lower case, no final stop."""
    for _ in range(1 + (rng.random() < 0.4)):
        kind = rng.random()
        if kind < 0.45:
            words = text.split(" ")
            j = rng.randrange(len(words))
            words[j] = _typo(words[j], rng)
            text = " ".join(words)
        elif kind < 0.8:
            old, new = ABBREVIATIONS[rng.randrange(len(ABBREVIATIONS))]
            text = text.replace(old, new)
        elif kind < 0.92:
            text = text.lower()
        else:
            text = text.rstrip(".")
    return text
