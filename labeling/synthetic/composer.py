"""Composes one synthetic merchant (text and metadata) from the phrase banks.

``Composer.record`` draws everything from one ``random.Random`` stream, so a seeded stream gives
the same merchants in the same order; the given label's corruption is decided by the caller.
"""

from __future__ import annotations

import random
import re
from itertools import accumulate

from labeling.synthetic import templates as t
from labeling.synthetic.records import MerchantRecord, NoiseKind
from labeling.synthetic.taxonomy import CATEGORIES, Tier, neighbours_of, priors
from labeling.synthetic.vocabulary import BANKS, CategoryBank

REFERENCE_YEAR = 2025  # "founded in" years count back from here, whatever today's date

_SENTENCE_COUNT_WEIGHTS = (0.12, 0.2, 0.24, 0.2, 0.14, 0.1)  # for 1..6 sentences
_TIER_YEARS = {"supportable": 8.0, "restricted": 4.0, "prohibited": 2.5}  # mean years in business
_TIER_CHARGEBACKS = {"supportable": 0.003, "restricted": 0.008, "prohibited": 0.015}
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _article(phrase: str) -> str:
    """``a`` or ``an`` for ``phrase`` (by first letter; good enough for the banks' words)."""
    return "an" if phrase[:1].lower() in "aeio" else "a"


class Composer:
    """Draws one record's content from a single ``random.Random`` stream."""

    def __init__(self, rng: random.Random, borderline_rate: float) -> None:
        self.rng = rng
        self.borderline_rate = borderline_rate
        p = priors()
        self.names = [c.name for c in CATEGORIES]
        self.cum_priors = list(accumulate(p[name] for name in self.names))
        self.tiers: dict[str, Tier] = {c.name: c.tier for c in CATEGORIES}
        self.mccs = {c.name: c.mccs for c in CATEGORIES}
        self.all_mccs = sorted({m for c in CATEGORIES for m in c.mccs})
        self.neighbours = {name: neighbours_of(name) for name in self.names}
        self.countries = list(t.COUNTRIES)
        self.cum_countries = list(accumulate(v[0] for v in t.COUNTRIES.values()))

    def record(self, index: int, noise_rng: random.Random, flip: NoiseKind) -> MerchantRecord:
        """Record ``index`` (0-based); ``flip`` says how to corrupt its given label."""
        rng = self.rng
        label = rng.choices(self.names, cum_weights=self.cum_priors)[0]
        other = None
        if rng.random() < self.borderline_rate:
            other = rng.choice(self.neighbours[label])
        bank = BANKS[label]
        country = self._country(bank)
        _weight, cities, tld, suffixes = t.COUNTRIES[country]
        city = rng.choice(cities)
        name = self._name(bank, suffixes, BANKS[other] if other else None)
        tier = self.tiers[label]
        years = min(60, int(rng.expovariate(1.0 / _TIER_YEARS[tier])))
        ticket = round(bank.ticket * rng.lognormvariate(0.0, 0.45), 2)
        volume = int(round(ticket * rng.lognormvariate(6.3, 1.1), -1)) + 100
        staff = max(1, int(rng.lognormvariate(1.6, 1.0)))
        description = self._description(label, other, name, city, years, staff, volume, ticket)
        return MerchantRecord(
            external_id=f"M{index + 1:07d}",
            business_name=name,
            website=self._website(name, bank, tld),
            description=description,
            mcc=self._mcc(label, other),
            country=country,
            city=city,
            monthly_volume_usd=volume,
            average_ticket_usd=ticket,
            years_in_business=years,
            chargeback_rate=round(_TIER_CHARGEBACKS[tier] * rng.lognormvariate(0.0, 0.6), 4),
            true_label=label,
            given_label=self._given(label, noise_rng, flip),
            noise_kind=flip,
            secondary_label=other,
        )

    def _given(self, label: str, noise_rng: random.Random, flip: NoiseKind) -> str:
        if flip == "neighbour":
            return noise_rng.choice(self.neighbours[label])
        if flip == "uniform":
            given = self.names[noise_rng.randrange(len(self.names) - 1)]
            # Index of the true label maps to the last name: uniform over the other classes.
            return self.names[-1] if given == label else given
        return label

    def _country(self, bank: CategoryBank) -> str:
        if bank.countries and self.rng.random() < 0.35:
            return self.rng.choice(bank.countries)
        return self.rng.choices(self.countries, cum_weights=self.cum_countries)[0]

    def _name(
        self, bank: CategoryBank, suffixes: tuple[str, ...], other: CategoryBank | None
    ) -> str:
        rng = self.rng
        source = other if other is not None and rng.random() < 0.3 else bank
        word = rng.choice(source.name_words) if rng.random() < 0.8 else rng.choice(t.GENERIC_NOUNS)
        pattern = rng.randrange(6)
        if pattern == 0:
            name = f"{rng.choice(t.NAME_WORDS)} {word}"
        elif pattern == 1:
            name = f"{rng.choice(t.SURNAMES)} {word}"
        elif pattern == 2:
            name = f"{rng.choice(t.NAME_WORDS)}{word.replace(' ', '')}"
        elif pattern == 3:
            name = f"The {rng.choice(t.NAME_WORDS)} {word}"
        elif pattern == 4:
            name = f"{rng.choice(t.SURNAMES)} & {rng.choice(t.SURNAMES)} {word}"
        else:
            first, second = rng.sample(t.NAME_WORDS, 2)
            name = f"{first} {second} {word}"
        if rng.random() < 0.3:
            name = f"{name} {rng.choice(suffixes)}"
        return name

    def _website(self, name: str, bank: CategoryBank, tld: str) -> str:
        rng = self.rng
        base = name.lower().replace("&", "and")
        for suffix in (" llc", " inc.", " ltd", " limited", " gmbh", " co.", " pty ltd"):
            base = base.removesuffix(suffix)
        slug = _NON_WORD.sub("" if rng.random() < 0.7 else "-", base).strip("-")
        if bank.tlds and rng.random() < 0.4:
            tld = rng.choice(bank.tlds)
        elif rng.random() < 0.35:
            tld = ".com"
        roll = rng.random()
        if roll < 0.1:
            slug = "shop" + slug
        elif roll < 0.18:
            slug = slug + "online"
        return f"https://{'www.' if rng.random() < 0.6 else ''}{slug}{tld}"

    def _mcc(self, label: str, other: str | None) -> str:
        rng = self.rng
        roll = rng.random()
        if other is not None and roll < 0.3:
            return rng.choice(self.mccs[other])
        if roll > 0.95:  # miscoded, as processors see all the time
            return rng.choice(self.all_mccs)
        return rng.choice(self.mccs[label])

    def _description(
        self,
        label: str,
        other: str | None,
        name: str,
        city: str,
        years: int,
        staff: int,
        volume: int,
        ticket: float,
    ) -> str:
        """1-6 sentences: label-bearing ones (identity, offer, details) among neutral fillers.

        The first sentence always speaks for ``label``; in a borderline record a minority of
        the others (or, in a one-sentence text, part of the product list) speak for ``other``.
        """
        rng = self.rng
        n_sentences = rng.choices(range(1, 7), weights=_SENTENCE_COUNT_WEIGHTS)[0]
        n_specific = 1 if n_sentences == 1 else rng.randint(max(1, n_sentences // 2), n_sentences)
        share = rng.uniform(0.25, 0.5) if other else 0.0
        sources = [label] + [
            other if other and rng.random() < share else label for _ in range(n_specific - 1)
        ]
        if other and n_specific >= 2 and other not in sources:
            sources[rng.randrange(1, n_specific)] = other
        values = self._values(name, city, years, staff, volume, ticket)
        details = {src: list(BANKS[src].details) for src in set(sources)}
        sentences: list[str] = []
        offers = 0
        sentences_used: set[str] = set()
        for i, source in enumerate(sources):
            bank = BANKS[source]
            roll = rng.random()
            mix = BANKS[other] if other and n_specific == 1 else None
            if i == 0 and roll < 0.65 and mix is None:
                kind = rng.choice(bank.kinds)
                values["kind"] = kind
                adj = "" if values["adj_word"] in kind else values["adj"]
                values["a_adj"] = _article(adj + kind) + " " + adj
                values["A_adj"] = t.capitalise(values["a_adj"])
                values["Adj"] = t.capitalise(adj)
                template = rng.choice(t.IDENTITY)
            elif i == 0 or (offers < 2 and roll < 0.35) or not details[source]:
                values["products"] = self._products(bank, mix, share)
                template = rng.choice(t.OFFER)
                while template in sentences_used:  # never the same frame twice in one text
                    template = rng.choice(t.OFFER)
                sentences_used.add(template)
                offers += 1
            else:
                pool = details[source]
                template = pool.pop(rng.randrange(len(pool)))
                while "{product}" in template:
                    template = template.replace("{product}", rng.choice(bank.products), 1)
            sentences.append(t.capitalise(template.format_map(values)))
        for filler in rng.sample(t.FILLERS, n_sentences - n_specific):
            sentences.insert(rng.randint(1, len(sentences)), filler.format_map(values))
        if rng.random() < 0.15:
            sentences.append(rng.choice(t.CLOSERS))
        text = " ".join(sentences)
        if rng.random() < 0.15:
            text = t.add_text_noise(text, rng)
        return text

    def _values(
        self, name: str, city: str, years: int, staff: int, volume: int, ticket: float
    ) -> dict[str, str]:
        rng = self.rng
        verb, verbs, verbing = rng.choice(t.VERBS)
        adj = rng.choice(t.ADJECTIVES)
        return {
            "name": name,
            "adj": adj,
            "adj_word": adj.strip() or "~",
            "place": rng.choice(t.PLACES).replace("{city}", city),
            "verb": verb,
            "verbs": verbs,
            "Verbing": t.capitalise(verbing),
            "channel": rng.choice(t.CHANNELS),
            "customers": rng.choice(t.CUSTOMERS),
            "years": "1 year" if years <= 1 else f"{years} years",
            "year": str(REFERENCE_YEAR - years),
            "staff": str(staff),
            "volume": f"{volume:,}",
            "ticket": f"{ticket:.0f}",
        }

    def _products(self, bank: CategoryBank, mix: CategoryBank | None, share: float) -> str:
        rng = self.rng
        count = rng.choices((1, 2, 3, 4), weights=(0.3, 0.3, 0.25, 0.15))[0]
        if mix is not None:
            count = max(count, 2)
        items: list[str] = []
        for j in range(count):
            source = mix if mix is not None and (j == 1 or rng.random() < share) else bank
            item = rng.choice(source.products)
            if item not in items:
                items.append(item)
        return t.join_products(items)
