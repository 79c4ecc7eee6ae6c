"""Per-category phrase banks for synthetic merchant descriptions.

Each bank holds what identifies a category in text (business kinds, product nouns, detail
sentences that may name a ``{product}``), words for business names, a median ticket in USD and
the countries and top-level domains the category leans towards. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CategoryBank:
    """Phrases that signal one category; ``ticket`` is the median order value in USD."""

    kinds: tuple[str, ...]
    products: tuple[str, ...]
    details: tuple[str, ...]
    name_words: tuple[str, ...]
    ticket: float
    countries: tuple[str, ...] = ()
    tlds: tuple[str, ...] = ()


def _split(text: str) -> tuple[str, ...]:
    """Phrases separated by ``|``, whitespace-normalised."""
    return tuple(" ".join(p.split()) for p in text.split("|") if p.strip())


def _bank(
    kinds: str,
    products: str,
    details: str,
    names: str,
    ticket: float,
    countries: str = "",
    tlds: str = "",
) -> CategoryBank:
    return CategoryBank(
        kinds=_split(kinds),
        products=_split(products),
        details=_split(details),
        name_words=_split(names),
        ticket=ticket,
        countries=tuple(countries.split()),
        tlds=tuple(tlds.split()),
    )


BANKS: dict[str, CategoryBank] = {
    "general_retail": _bank(
        """online boutique|clothing store|home goods retailer|gift shop|e-commerce store|
        department store|furniture showroom|toy store|independent bookshop|homeware brand|
        outdoor and camping store|kitchenware shop|hobby and craft shop|shoe store""",
        """women's clothing|graphic t-shirts|sneakers|leather handbags|throw pillows|
        scented candles|kitchen utensils|board games|children's toys|used books|bedding|
        picture frames|phone cases|handmade jewelry|camping tents|hiking boots|sunglasses|
        ceramic mugs|stationery|pocket multi-tools|fishing rods|backpacks|home decor|
        pet accessories|wall art|yoga mats|rain jackets|cookware|puzzles|linen dresses""",
        """Most items ship within two business days from our warehouse.|
        We offer free returns within 30 days.|Our bestsellers are {product} and {product}.|
        New collections launch four times a year.|
        Inventory is bought directly from the brands or authorized distributors.|
        Gift wrapping is available at checkout.|
        We run a loyalty program with points on every order.|
        We also carry a small range of {product}.""",
        """Boutique|Goods|Outfitters|Home|Threads|Mercantile|Emporium|Trading Post|Basics|
        Wardrobe|Nest|Provisions""",
        45.0,
    ),
    "software_saas": _bank(
        """software company|SaaS startup|B2B software vendor|app developer|cloud platform|
        IT services firm|web hosting provider|developer tools company|mobile app studio""",
        """project management software|invoicing tools|CRM subscriptions|an analytics dashboard|
        mobile apps|API access|cloud storage plans|website builder plans|team chat software|
        scheduling software|cybersecurity tools|HR and payroll software|e-learning licenses|
        data backup services|a point-of-sale app|password manager plans|domain names|
        email marketing software""",
        """Customers pay a monthly or annual subscription per seat.|
        We offer a 14-day free trial before billing starts.|
        Our platform integrates with Slack, Google Workspace and Salesforce.|
        Pricing is tiered by usage and number of users.|
        Enterprise plans include SSO and a dedicated account manager.|
        The software is hosted on AWS with 99.9% uptime.|
        Customers can cancel anytime from the billing page.|
        Most revenue comes from {product}.""",
        """Labs|Cloud|Soft|Systems|Analytics|Stack|Logic|Data|Works|Byte|Sync|Apps""",
        60.0,
    ),
    "restaurants_food": _bank(
        """restaurant|cafe|food truck|bakery|pizzeria|catering company|coffee roaster|
        meal-kit delivery service|specialty grocery store|juice bar|deli|ramen shop|bistro""",
        """wood-fired pizza|sandwiches|espresso drinks|pastries|sushi|burgers|vegan bowls|
        catering platters|craft beer|tacos|fresh bread|meal kits|smoothies|specialty cheeses|
        gourmet chocolates|olive oil|hot sauce|roasted coffee beans|cupcakes|salads""",
        """Orders are taken in person, by phone and through DoorDash and Uber Eats.|
        We seat about 40 guests and offer takeout.|
        Our menu changes with the seasons and uses local produce.|
        Catering orders require 48 hours notice.|
        We hold a valid food service permit and liquor license.|
        Most transactions are small, under $30.|Our signature item is {product}.""",
        """Kitchen|Bistro|Bakehouse|Eatery|Grill|Table|Roasters|Pantry|Taqueria|Noodle Bar""",
        22.0,
    ),
    "professional_services": _bank(
        """accounting firm|law office|marketing agency|management consultancy|
        architecture studio|bookkeeping service|HR consulting firm|translation agency|
        design studio|tax preparation office|recruiting firm""",
        """bookkeeping|tax preparation|contract review|brand strategy|payroll services|
        business consulting|website design|legal advice|recruiting services|
        translation services|financial statement audits|social media management|
        immigration paperwork|architectural drawings""",
        """Clients are invoiced monthly for hours worked.|
        Engagements start with a free consultation.|
        Our team includes certified public accountants and attorneys.|
        Retainers are billed at the start of each quarter.|
        We work mostly with small and medium businesses.|
        Payment is due within 30 days of invoice.|Our main service line is {product}.""",
        """Partners|Advisors|Consulting|Associates|Group|Law|CPA|Strategy|Studio|Counsel""",
        900.0,
    ),
    "travel_agency": _bank(
        """travel agency|tour operator|boutique hotel|vacation rental company|
        cruise booking agency|airport shuttle service|guided tours company|bed and breakfast""",
        """flight bookings|hotel reservations|guided city tours|cruise packages|
        airport transfers|honeymoon packages|group tours|travel insurance|ski trips|
        safari itineraries|rental cars|walking tours|room nights""",
        """Bookings are paid at reservation and confirmed by email with supplier details.|
        Customers usually travel within one to six months of purchase.|
        We are a member of IATA and ASTA.|
        Cancellations follow each supplier's refund policy.|
        Most trips are booked two to three months in advance.|
        Our most popular offer is {product}.""",
        """Travel|Tours|Journeys|Getaways|Voyages|Inn|Escapes|Expeditions|Trips""",
        850.0,
    ),
    "nutritional_supplements": _bank(
        """supplement brand|vitamin store|sports nutrition shop|health food store|
        wellness brand|protein powder company|herbal remedies shop""",
        """multivitamins|protein powder|collagen supplements|fish oil capsules|
        pre-workout powder|herbal teas|probiotics|weight loss shakes|vitamin D gummies|
        keto supplements|greens powder|melatonin gummies|detox teas|testosterone boosters|
        appetite suppressants|ashwagandha capsules|creatine""",
        """Products are made in a GMP-certified facility.|
        Customers can subscribe and save 15% with monthly auto-ship.|
        These statements have not been evaluated by the FDA.|
        Our formulas are third-party tested for purity.|
        New customers get a free trial bottle and are then billed monthly.|
        Our bestsellers are {product} and {product}.""",
        """Nutrition|Vitality|Wellness|Naturals|Health|Labs|Fuel|Botanics|Vita""",
        55.0,
    ),
    "cbd_products": _bank(
        """CBD shop|hemp products brand|CBD wellness company|hemp store|CBD pet products brand|
        CBD e-commerce store""",
        """CBD oil tinctures|hemp-derived CBD gummies|CBD topicals|full-spectrum hemp extract|
        CBD pet treats|CBD bath bombs|delta-8 gummies|CBD vape cartridges|hemp flower|
        CBD capsules|broad-spectrum CBD softgels|CBD sleep drops|hemp seed oil""",
        """All products contain less than 0.3% THC and come with lab certificates.|
        Our hemp is grown on licensed farms in Colorado and Oregon.|
        We do not ship to states where hemp-derived CBD is restricted.|
        Customers must be 21 or older to purchase.|
        Each batch is tested by an independent lab for potency.|
        Our most popular product is {product}.""",
        """Hemp|Leaf|Green|CBD|Canna|Botanicals|Farms|Remedies|Sativa""",
        65.0,
        "US US GB",
    ),
    "skill_games": _bank(
        """skill gaming platform|esports tournament site|fantasy sports app|trivia contest app|
        mobile puzzle tournament platform|skill-based card game app""",
        """paid-entry trivia tournaments|head-to-head puzzle matches|
        daily fantasy sports contests|esports tournaments with cash prizes|
        skill-based solitaire matches|paid chess tournaments|word game duels|
        bowling and pool mobile matches""",
        """Outcomes are determined by player skill, not chance.|
        Players pay an entry fee and the top scorers win cash prizes.|
        We block players in states where paid-entry contests are not allowed.|
        Players are matched with opponents of similar skill rating.|
        A legal opinion confirms our games are predominantly skill-based.|
        Entry fees range from $1 to $20 per match.""",
        """Arena|Play|Games|Clash|League|Duel|Skill|Champions|Tourney""",
        12.0,
    ),
    "gambling": _bank(
        """online casino|sportsbook|poker site|lottery reseller|betting exchange|bingo site|
        sweepstakes casino""",
        """slot games|sports betting|live dealer blackjack|roulette|online poker|
        lottery tickets|horse race wagering|casino bonuses|in-play bets|scratch cards|
        crash games|baccarat""",
        """We hold a gaming license from the Malta Gaming Authority.|
        Players deposit funds into a wallet and place wagers.|
        Customers must be 18+ and pass age verification.|
        Welcome bonuses match the first deposit up to $500.|
        Odds are updated live during matches.|Winnings are paid out within 48 hours.""",
        """Casino|Bet|Lucky|Jackpot|Spin|Odds|Royal|Fortune|Vegas|Stake""",
        40.0,
        "MT MT CY GB CW",
        ".bet .casino",
    ),
    "crypto_services": _bank(
        """cryptocurrency exchange|crypto wallet provider|bitcoin ATM operator|NFT marketplace|
        crypto trading platform|token launchpad|crypto mining company""",
        """bitcoin purchases|crypto-to-fiat exchange|stablecoin transfers|NFT drops|
        crypto staking|token presales|mining rigs|crypto trading signals|DeFi yield products|
        a non-custodial wallet app|ether and altcoins""",
        """Users must complete KYC before trading.|
        We are registered as a money services business with FinCEN.|
        Customers buy crypto with a debit card and withdraw to external wallets.|
        Trading fees are 1.5% per trade.|
        We support over 200 tokens including BTC, ETH and USDT.|
        Most volume comes from {product}.""",
        """Coin|Chain|Block|Crypto|Token|Ledger|Satoshi|Hash|Vault|DeFi""",
        300.0,
        "SG CY EE US",
        ".io .io .xyz",
    ),
    "high_risk_financial": _bank(
        """payday lender|credit repair company|forex brokerage|investment signals service|
        loan broker|debt relief company|binary options platform""",
        """payday loans|credit repair services|forex trading accounts|binary options|
        debt settlement programs|cash advances|guaranteed loan approvals|
        investment coaching|high-yield investment programs|credit score boosting|
        merchant cash advances""",
        """We charge an upfront fee before any work on the credit report begins.|
        Loans are approved in minutes regardless of credit history.|
        Clients can earn up to 20% monthly returns.|
        Our brokers trade leveraged currency pairs for clients.|
        Fees are collected before the debt settlement is negotiated.|
        APR ranges from 200% to 600%.""",
        """Capital|Credit|Finance|Funding|Lending|Wealth|Markets|Trust|Loans""",
        350.0,
        "CY GB US",
    ),
    "debt_collection": _bank(
        """collection agency|debt buyer|accounts receivable management firm|recovery agency|
        debt collection law firm""",
        """third-party debt collection|past-due account recovery|
        purchased consumer debt portfolios|medical bill collections|skip tracing|
        payment plans for delinquent accounts|commercial debt recovery|
        judgment enforcement""",
        """Debtors pay their balances online by card through our portal.|
        We work on contingency and keep 25% of amounts recovered.|
        We are licensed as a collection agency and follow the FDCPA.|
        Our agents contact debtors by phone, letter and text.|
        We buy charged-off accounts from lenders and collect them.""",
        """Recovery|Collections|Receivables|Credit Services|Solutions|Management""",
        250.0,
    ),
    "multi_level_marketing": _bank(
        """direct sales company|network marketing company|MLM brand|
        independent distributor business|home party sales company""",
        """starter kits|essential oils|skincare sets|distributor memberships|wellness shakes|
        leggings|cookware sets|back-office subscriptions|training events|diet programs""",
        """Distributors earn commissions on their own sales and on their downline.|
        New members buy a starter kit for $499 to join.|
        Reps must meet a monthly volume target to stay active.|
        Most revenue comes from recruiting new distributors.|
        Our compensation plan pays bonuses across seven levels.|
        Consultants sell at home parties and on social media.""",
        """Global|Network|Life|Empower|Thrive|Unity|Dream|Wellness International""",
        120.0,
    ),
    "high_risk_travel": _bank(
        """travel club|timeshare reseller|vacation membership program|discount travel club|
        timeshare exit company|prepaid travel voucher seller""",
        """lifetime travel club memberships|timeshare resales|vacation ownership points|
        prepaid holiday vouchers|discounted resort weeks|timeshare exit services|
        travel rewards memberships|discounted cruise certificates""",
        """Members pay an upfront enrollment fee of $3,000 to $8,000.|
        Trips are often booked a year or more after payment.|
        Sales are made at presentations held at resorts and by phone.|
        Membership unlocks wholesale rates not available to the public.|
        Refunds are not available after the three-day rescission period.|
        We help owners exit their timeshare contracts for an upfront fee.""",
        """Vacation Club|Travel Club|Resorts|Holidays|Getaways|Escapes|Leisure""",
        2500.0,
    ),
    "dating_services": _bank(
        """dating app|matchmaking service|online dating site|speed dating organizer|
        chat and companionship platform""",
        """premium memberships|matchmaking packages|virtual gifts|chat credits|profile boosts|
        video chat minutes|singles events|companionship subscriptions""",
        """Members pay monthly for unlimited messaging.|
        Profiles are verified with a selfie and ID check.|Users must be 18 or older.|
        Memberships auto-renew unless cancelled.|
        Credits are used to message and send gifts to other members.""",
        """Match|Date|Hearts|Singles|Connect|Cupid|Spark|Amour|Flirt""",
        30.0,
    ),
    "adult_content": _bank(
        """adult website|webcam platform|adult content subscription site|adult toy store|
        escort directory|adult video studio""",
        """adult videos|live webcam shows|explicit photo sets|fan subscriptions|adult toys|
        private chat shows|escort listings|adult membership passes|erotic audio stories""",
        """All performers are verified adults with signed model releases.|
        Access requires age verification.|
        Members buy tokens to tip performers during live shows.|
        Content is explicit and intended for adults only.|
        Billing appears under a discreet descriptor.""",
        """Cams|XXX|Velvet|Desire|Playhouse|Night|Fantasy|Secret""",
        35.0,
        "CY NL US",
        ".xxx .tv",
    ),
    "weapons_firearms": _bank(
        """gun shop|firearms dealer|ammunition retailer|knife and blade store|
        tactical gear store|gunsmith""",
        """handguns|rifles|shotguns|ammunition|firearm parts|80% lowers|
        high-capacity magazines|suppressors|switchblades|stun guns|body armor|crossbows|
        rifle scopes|pistol kits""",
        """Firearm purchases are shipped to a licensed FFL dealer for transfer.|
        We hold a federal firearms license.|Buyers must pass a background check.|
        Ammunition ships to the lower 48 states only.|
        We also sell parts kits for home builds.""",
        """Arms|Tactical|Armory|Guns|Defense|Firearms|Ammo|Ballistics|Patriot""",
        220.0,
        "US US",
    ),
    "drugs_paraphernalia": _bank(
        """head shop|smoke shop|vape store|grow supply store|paraphernalia retailer|
        psychedelics shop""",
        """glass bongs|water pipes|herb grinders|rolling papers|dab rigs|dry herb vaporizers|
        kratom powder|psilocybin grow kits|magic mushrooms|nitrous oxide chargers|
        synthetic cannabinoids|research chemicals|marijuana seeds|one-hitters""",
        """Products are sold for tobacco use only.|
        We ship discreetly in unmarked packaging.|
        Customers must be 21+ and confirm their local laws.|
        Our glass is hand-blown by local artists.|
        Research chemicals are sold not for human consumption.""",
        """Smoke|Glass|Haze|Cloud Nine|Psy|Head Shop|Kush|Trip|Grow""",
        48.0,
        "NL CA US",
    ),
    "counterfeit_goods": _bank(
        """replica store|designer-inspired boutique|luxury outlet site|
        wholesale fashion supplier|super-copy watch shop""",
        """replica handbags|designer-inspired sneakers|copy watches|
        AAA-grade designer sunglasses|1:1 luxury belts|jerseys with team logos|
        knockoff perfumes|mirror-quality wallets|replica jewelry|fake designer hoodies""",
        """Our products look identical to the originals at 10% of the price.|
        We ship from factories in Guangzhou directly to customers.|
        Logos and packaging match the original brands.|
        Prices are far below the brands' retail prices.|
        Items are not sold by or affiliated with the brands.|
        Card payments go through a partner site.""",
        """Luxury|Replica|Outlet|Designer|Brand|Style|Fashion|Deluxe|Elite""",
        95.0,
        "HK CN CN",
        ".shop .top .store",
    ),
    "unlicensed_pharmacy": _bank(
        """online pharmacy|discount drugstore website|canadian pharmacy|
        online medication store|generic drug supplier|telehealth pharmacy""",
        """generic Viagra|Cialis|tramadol|oxycodone|modafinil|sildenafil tablets|Xanax|
        Adderall|semaglutide injections|anabolic steroids|antibiotics|
        prescription painkillers|weight loss injections|isotretinoin""",
        """No prescription is required; our doctors approve orders online.|
        We ship discreetly worldwide from partner pharmacies in India.|
        Medications are sold without a doctor's prescription.|
        Orders ship in plain packaging with tracking.|
        Our pharmacy is not VIPPS accredited.|
        Prices are up to 80% lower than US pharmacies.""",
        """Pharmacy|Meds|Rx|Pharma|Drugstore|Pills|Health|Care|Med""",
        140.0,
        "IN CA VU RU",
        ".top .net .ru",
    ),
}
