"""The policy taxonomy of the synthetic merchant data: categories, tiers, priors, neighbour pairs.

A category is a label class (snake_case ``name``) with a ``tier`` (``supportable``,
``restricted`` or ``prohibited``), the texts analysts and the zero-shot cold start read, a default
MCC set and a prior (its expected share of generated records). Pure Python: no Django imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

Tier = Literal["supportable", "restricted", "prohibited"]
TIERS: tuple[Tier, ...] = ("supportable", "restricted", "prohibited")

# Mirrors the queue's reserved keys (defined with the Django models, which this package must not
# import): Enter, n (noise flag), a (ambiguous), c (comment), s (skip), u (undo), g, ?, and
# the review keys y (keep the given label), x (exclude), m (apply to the group).
RESERVED_KEYS = frozenset({"n", "a", "c", "s", "u", "g", "?", "y", "x", "m"})
SHORTCUT_KEYS: tuple[str, ...] = tuple("123456789") + tuple(
    ch for ch in "bdefhijklmopqrtvwxyz" if ch not in RESERVED_KEYS
)

UNKNOWN_CATEGORY = "Unknown category: {name!r}."


@dataclass(frozen=True, slots=True)
class Category:
    """One policy category; ``prior`` is its expected share of generated records."""

    name: str
    display_name: str
    tier: Tier
    description: str
    guideline: str
    mccs: tuple[str, ...]
    prior: float


class LabelClassSpec(TypedDict):
    """What a project needs to create one label class from the taxonomy."""

    name: str
    display_name: str
    tier: Tier
    description: str
    guideline: str
    shortcut_key: str
    order: int
    mccs: list[str]


def _c(
    name: str, display: str, tier: Tier, prior: float, mccs: str, description: str, guideline: str
) -> Category:
    return Category(
        name=name,
        display_name=display,
        tier=tier,
        description=" ".join(description.split()),
        guideline=guideline.strip(),
        mccs=tuple(mccs.split()),
        prior=prior,
    )


CATEGORIES: tuple[Category, ...] = (
    _c(
        "general_retail",
        "General retail",
        "supportable",
        0.19,
        "5311 5651 5712 5945 5999 5941",
        """Merchants that sell ordinary physical consumer goods such as clothing, shoes, home
       goods, furniture, toys, books, gifts, kitchenware or outdoor and camping equipment, in a
       store or online, sourced from the brands or authorised distributors.""",
        """Label general_retail when the business sells everyday legal goods to consumers.
Examples: an online boutique selling dresses and sneakers; a homeware shop selling candles and
bedding; a camping store selling tents, backpacks and pocket multi-tools.
Not general_retail: replicas or 'designer-inspired' copies of brands (counterfeit_goods); guns,
ammunition or weapon parts (weapons_firearms); kits sold through a recruited downline
(multi_level_marketing); prepared food and drinks (restaurants_food).""",
    ),
    _c(
        "software_saas",
        "Software and SaaS",
        "supportable",
        0.12,
        "5734 7372 5817 7379",
        """Companies that sell software licences, subscriptions to hosted software (SaaS), mobile
       apps, hosting or IT services to businesses or consumers, usually billed per seat, per
       month or by usage.""",
        """Label software_saas for software, apps, hosting and IT services with recurring billing.
Examples: a CRM sold per seat per month; a website builder with a free trial; a backup service.
Not software_saas: exchanges, wallets or token sales (crypto_services); consulting billed by the
hour without a product (professional_services).""",
    ),
    _c(
        "restaurants_food",
        "Restaurants and food",
        "supportable",
        0.10,
        "5812 5814 5411 5462",
        """Restaurants, cafes, bakeries, food trucks, caterers, meal-kit services and specialty
       food shops that sell prepared food, drinks or groceries, mostly in small tickets.""",
        """Label restaurants_food for prepared food and drinks, groceries and catering.
Examples: a pizzeria taking orders through delivery apps; a coffee roaster selling beans online.
Not restaurants_food: vitamins, protein powders or weight-loss shakes (nutritional_supplements);
general gift shops that also sell chocolate (general_retail).""",
    ),
    _c(
        "professional_services",
        "Professional services",
        "supportable",
        0.10,
        "8931 8111 8999 7392",
        """Firms that sell expertise billed by the hour, by project or on retainer: accountants,
       lawyers, consultants, marketing and design agencies, recruiters and translators.""",
        """Label professional_services for advice and skilled work invoiced to clients.
Examples: a bookkeeping firm billing monthly; a marketing agency on retainer; a law office.
Not professional_services: agencies that collect debts owed to others (debt_collection); credit
repair or loan brokering for a fee (high_risk_financial); hosted software (software_saas).""",
    ),
    _c(
        "travel_agency",
        "Travel agencies and lodging",
        "supportable",
        0.05,
        "4722 7011 4511",
        """Travel agencies, tour operators, hotels and vacation rentals that sell specific trips,
       rooms or tours, booked for dates and delivered by known suppliers.""",
        """Label travel_agency for bookings of specific trips, rooms, tours or transfers.
Examples: a tour operator selling guided city tours; a boutique hotel taking reservations.
Not travel_agency: memberships, travel clubs, timeshares or vouchers paid long before any trip
(high_risk_travel).""",
    ),
    _c(
        "nutritional_supplements",
        "Nutritional supplements",
        "restricted",
        0.06,
        "5499 5999",
        """Brands and shops selling vitamins, minerals, protein and sports nutrition, herbal and
       weight-loss supplements, often with subscriptions or free-trial offers and health
       claims that regulators watch.""",
        """Label nutritional_supplements for non-prescription vitamins, powders, teas and capsules.
Examples: a protein powder brand with auto-ship; a store selling probiotics and fish oil.
Not nutritional_supplements: CBD or hemp extracts (cbd_products); prescription drugs or
injections (unlicensed_pharmacy); products sold mainly through a recruiting downline
(multi_level_marketing).""",
    ),
    _c(
        "cbd_products",
        "CBD and hemp products",
        "restricted",
        0.04,
        "5999 5499 5993",
        """Merchants selling hemp-derived CBD oils, gummies, topicals, capsules, pet treats or
       hemp flower, which are legal in many places only under THC limits, lab testing and age
       rules.""",
        """Label cbd_products for hemp or CBD goods within legal THC limits.
Examples: CBD tinctures with lab certificates; hemp gummies; CBD pet treats.
Not cbd_products: prescription medicines (unlicensed_pharmacy); bongs, grinders, psychedelics or
marijuana seeds (drugs_paraphernalia); plain vitamins (nutritional_supplements).""",
    ),
    _c(
        "skill_games",
        "Skill games",
        "restricted",
        0.025,
        "7994 5816 7993",
        """Platforms where players pay to enter contests whose outcome depends mainly on skill:
       fantasy sports, esports, trivia, puzzle or card tournaments with cash prizes.""",
        """Label skill_games for paid-entry contests decided predominantly by skill.
Examples: a trivia app with cash prizes; head-to-head solitaire tournaments; daily fantasy sports.
Not skill_games: wagers on chance or on events, casino games, lotteries (gambling).""",
    ),
    _c(
        "gambling",
        "Gambling",
        "restricted",
        0.04,
        "7995 7800 7801 7802",
        """Online casinos, sportsbooks, poker rooms, lotteries, bingo and betting exchanges where
       customers stake money on an outcome decided by chance or by events, usually under a
       gaming licence.""",
        """Label gambling for wagers, casino games, betting and lotteries.
Examples: a sportsbook with in-play odds; slots and live roulette; a lottery ticket reseller.
Not gambling: contests decided by skill (skill_games).""",
    ),
    _c(
        "crypto_services",
        "Cryptocurrency services",
        "restricted",
        0.04,
        "6051 6211 4829",
        """Exchanges, brokers, wallets, bitcoin ATMs, NFT marketplaces, token sales and mining
       businesses that let customers buy, hold, send or earn cryptocurrency.""",
        """Label crypto_services for buying, selling, holding or issuing crypto assets.
Examples: a card-to-bitcoin on-ramp; a token presale; an NFT marketplace.
Not crypto_services: forex, binary options or guaranteed-return schemes without crypto
(high_risk_financial); ordinary software subscriptions (software_saas).""",
    ),
    _c(
        "high_risk_financial",
        "High-risk financial services",
        "restricted",
        0.035,
        "6012 6211 7277 6051",
        """Payday and guaranteed loans, credit repair, debt relief, forex and binary options,
       investment signals and other financial services with upfront fees or promised returns.""",
        """Label high_risk_financial for risky credit, trading and fee-first financial services.
Examples: payday loans at 400% APR; credit repair charging before work; forex signals.
Not high_risk_financial: collecting debts owed to others (debt_collection); crypto exchanges
(crypto_services).""",
    ),
    _c(
        "debt_collection",
        "Debt collection",
        "restricted",
        0.025,
        "7322 7277",
        """Collection agencies and debt buyers that recover past-due consumer or commercial debts
       owed to others or bought from lenders, taking card payments from debtors.""",
        """Label debt_collection for recovering debts, for clients or on purchased portfolios.
Examples: a contingency agency collecting medical bills; a debt buyer's payment portal.
Not debt_collection: debt settlement or credit repair sold to the debtor (high_risk_financial);
a law or accounting firm's own invoicing (professional_services).""",
    ),
    _c(
        "multi_level_marketing",
        "Multi-level marketing",
        "restricted",
        0.03,
        "5964 5966 5968 5969",
        """Direct-selling and network-marketing companies whose distributors buy starter kits,
       must meet volume targets and earn commissions on the sales and recruits of their
       downline.""",
        """Label multi_level_marketing when income depends on recruiting a downline of sellers.
Examples: essential oils sold by consultants who buy a $499 kit; a seven-level compensation plan.
Not multi_level_marketing: a brand selling supplements or goods directly to consumers
(nutritional_supplements, general_retail).""",
    ),
    _c(
        "high_risk_travel",
        "High-risk travel",
        "restricted",
        0.018,
        "5962 4722 7012",
        """Travel clubs, timeshares, vacation memberships, prepaid travel vouchers and timeshare
       exit companies that take large payments long before, or instead of, any specific trip.""",
        """Label high_risk_travel for memberships, timeshares and vouchers paid far in advance.
Examples: a lifetime travel club sold at resort presentations; a timeshare exit service.
Not high_risk_travel: bookings of a specific trip, hotel or tour (travel_agency).""",
    ),
    _c(
        "dating_services",
        "Dating services",
        "restricted",
        0.025,
        "7273",
        """Dating apps and sites, matchmakers and companionship chat platforms that charge for
       memberships, messaging credits or events.""",
        """Label dating_services for meeting, chatting and matchmaking between adults.
Examples: a dating app with premium memberships; a matchmaking agency; singles events.
Not dating_services: explicit content, webcams or escort listings (adult_content).""",
    ),
    _c(
        "weapons_firearms",
        "Weapons and firearms",
        "prohibited",
        0.015,
        "5941 5999 7999",
        """Sellers of firearms, ammunition, gun parts and build kits, suppressors, high-capacity
       magazines and other weapons such as switchblades, stun guns or body armour.""",
        """Label weapons_firearms for guns, ammunition, weapon parts and weapons.
Examples: a firearms dealer shipping to FFLs; 80% lowers; ammunition; switchblades.
Not weapons_firearms: camping or fishing gear with ordinary pocket knives (general_retail).""",
    ),
    _c(
        "drugs_paraphernalia",
        "Drugs and paraphernalia",
        "prohibited",
        0.014,
        "5993 5999",
        """Head shops and sellers of bongs, pipes, grinders, vaporizers, psychedelic grow kits,
       research chemicals, kratom, synthetic cannabinoids or marijuana seeds.""",
        """Label drugs_paraphernalia for drug use equipment and illegal or unregulated substances.
Examples: a smoke shop selling water pipes; magic mushroom grow kits; research chemicals.
Not drugs_paraphernalia: lab-tested hemp CBD under THC limits (cbd_products); prescription
medicines (unlicensed_pharmacy).""",
    ),
    _c(
        "adult_content",
        "Adult content",
        "prohibited",
        0.025,
        "5967 7273 7841",
        """Websites, webcam platforms and studios selling sexually explicit videos, images, live
       shows or subscriptions, escort listings and similar adult services.""",
        """Label adult_content for sexually explicit material and services.
Examples: a webcam platform with tokens; a subscription site with explicit videos.
Not adult_content: dating and matchmaking without explicit content (dating_services).""",
    ),
    _c(
        "counterfeit_goods",
        "Counterfeit and replica goods",
        "prohibited",
        0.02,
        "5691 5944 5948 5999",
        """Sellers of replicas, copies and 'designer-inspired' goods that carry or imitate the
       trademarks of luxury and sports brands: bags, watches, shoes, jerseys, perfume.""",
        """Label counterfeit_goods for replicas or copies of branded goods.
Examples: 1:1 replica handbags; copy watches shipped from a factory; knockoff perfume.
Not counterfeit_goods: authentic goods from brands or authorised distributors (general_retail).""",
    ),
    _c(
        "unlicensed_pharmacy",
        "Unlicensed pharmacy",
        "prohibited",
        0.013,
        "5912 5122 5999",
        """Online pharmacies and drug suppliers selling prescription-only medicines, controlled
       substances, injections or steroids without a valid prescription or pharmacy licence.""",
        """Label unlicensed_pharmacy for prescription drugs sold without prescription or licence.
Examples: tramadol with no prescription needed; semaglutide injections shipped from abroad.
Not unlicensed_pharmacy: vitamins and supplements (nutritional_supplements); hemp CBD
(cbd_products).""",
    ),
)

NEIGHBOUR_PAIRS: tuple[tuple[str, str], ...] = (
    ("general_retail", "counterfeit_goods"),
    ("general_retail", "weapons_firearms"),
    ("general_retail", "multi_level_marketing"),
    ("general_retail", "restaurants_food"),
    ("software_saas", "crypto_services"),
    ("software_saas", "professional_services"),
    ("professional_services", "debt_collection"),
    ("travel_agency", "high_risk_travel"),
    ("cbd_products", "unlicensed_pharmacy"),
    ("cbd_products", "drugs_paraphernalia"),
    ("cbd_products", "nutritional_supplements"),
    ("nutritional_supplements", "unlicensed_pharmacy"),
    ("nutritional_supplements", "multi_level_marketing"),
    ("skill_games", "gambling"),
    ("crypto_services", "high_risk_financial"),
    ("high_risk_financial", "debt_collection"),
    ("dating_services", "adult_content"),
)

_BY_NAME = {c.name: c for c in CATEGORIES}
_NEIGHBOURS: dict[str, tuple[str, ...]] = {
    c.name: tuple(
        sorted(
            {b for a, b in NEIGHBOUR_PAIRS if a == c.name}
            | {a for a, b in NEIGHBOUR_PAIRS if b == c.name}
        )
    )
    for c in CATEGORIES
}
_PAIR_SET = frozenset(frozenset(p) for p in NEIGHBOUR_PAIRS)


def category_names() -> tuple[str, ...]:
    """Names of all categories, in taxonomy order."""
    return tuple(c.name for c in CATEGORIES)


def get_category(name: str) -> Category:
    """The category called ``name``; ``KeyError`` for an unknown name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(UNKNOWN_CATEGORY.format(name=name)) from None


def neighbours_of(name: str) -> tuple[str, ...]:
    """The declared neighbours of a category, sorted by name."""
    get_category(name)
    return _NEIGHBOURS[name]


def are_neighbours(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` form a declared neighbour pair (order does not matter)."""
    return frozenset((a, b)) in _PAIR_SET


def priors() -> dict[str, float]:
    """Each category's share of generated records, normalised to sum to 1."""
    total = sum(c.prior for c in CATEGORIES)
    return {c.name: c.prior / total for c in CATEGORIES}


def label_class_specs() -> list[LabelClassSpec]:
    """The taxonomy as rows to create a project's label classes from.

    Shortcut keys are the digits 1-9 and then letters, never one of ``RESERVED_KEYS``.
    """
    return [
        LabelClassSpec(
            name=c.name,
            display_name=c.display_name,
            tier=c.tier,
            description=c.description,
            guideline=c.guideline,
            shortcut_key=SHORTCUT_KEYS[i],
            order=i,
            mccs=list(c.mccs),
        )
        for i, c in enumerate(CATEGORIES)
    ]
