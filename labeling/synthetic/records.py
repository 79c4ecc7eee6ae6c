"""The record type of the synthetic merchant data: what an analyst sees plus ground truth.

Money is in USD; ``chargeback_rate`` is a fraction (0.004 = 0.4%).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

NoiseKind = Literal["none", "uniform", "neighbour"]


@dataclass(frozen=True, slots=True)
class MerchantRecord:
    """One generated merchant.

    ``chargeback_rate`` is a fraction (0.004 = 0.4%); money is in USD. ``secondary_label`` names
    the neighbour category a borderline record also shows features of, else ``None``.
    """

    external_id: str
    business_name: str
    website: str
    description: str
    mcc: str
    country: str
    city: str
    monthly_volume_usd: int
    average_ticket_usd: float
    years_in_business: int
    chargeback_rate: float
    true_label: str
    given_label: str
    noise_kind: NoiseKind
    secondary_label: str | None

    @property
    def text(self) -> str:
        """The case text: the business description."""
        return self.description

    def metadata(self) -> dict[str, object]:
        """What an analyst sees beside the text (no labels, no ground truth)."""
        return {
            "business_name": self.business_name,
            "website": self.website,
            "mcc": self.mcc,
            "country": self.country,
            "city": self.city,
            "monthly_volume_usd": self.monthly_volume_usd,
            "average_ticket_usd": self.average_ticket_usd,
            "years_in_business": self.years_in_business,
            "chargeback_rate": self.chargeback_rate,
        }

    def to_dict(self) -> dict[str, object]:
        """All fields, ground truth included, as a JSON-ready dict."""
        return asdict(self)
