"""The checker's plain-data inputs and its report, kept apart from the arithmetic.

Inputs are what the gatherer reads from Postgres, S3 and the fake provider (lab.gather) or
what a test crafts by hand; the report is what lands in ``checker.json``. The S3 key
functions restate docs/contracts.md instead of importing the importer's: the proving ground
checks the importer against the contract, so it must not share the code under test.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from lab.rundir import CHECKER_JSON, AcknowledgedJob, RunDirError, read_json, write_json

DETAIL_LIMIT = 200
"""Findings kept per category in checker.json; totals always count every one."""


def image_digest(external_id: str, url: str) -> str:
    return hashlib.sha256(f"{external_id}\n{url}".encode()).hexdigest()[:32]


def original_key(company_id: str, provider: str, store_id: str, external_id: str, url: str) -> str:
    return f"images/{company_id}/{provider}/{store_id}/{image_digest(external_id, url)}"


def thumbnail_key(company_id: str, provider: str, store_id: str, external_id: str, url: str) -> str:
    return f"thumbnails/{company_id}/{provider}/{store_id}/{image_digest(external_id, url)}.jpg"


class CatalogFormatError(ValueError):
    """The fake provider's expected-catalog document does not have the documented shape."""


@dataclass(frozen=True)
class ExpectedImage:
    url: str
    expect: Literal["stored", "rejected"]


@dataclass(frozen=True)
class ExpectedProduct:
    external_id: str
    images: tuple[ExpectedImage, ...] = ()
    malformed: bool = False


@dataclass(frozen=True)
class ExpectedCatalog:
    store_id: str
    dialect: str
    products: tuple[ExpectedProduct, ...]

    @classmethod
    def from_json(cls, data: Any) -> ExpectedCatalog:
        """Parse ``GET /admin/stores/{store_id}/expected``; fail loudly on any other shape."""
        try:
            products = []
            for p in data["products"]:
                images = []
                for image in p.get("images") or ():
                    if image["expect"] not in ("stored", "rejected"):
                        raise CatalogFormatError(f"image expect {image['expect']!r} is not stored|rejected")
                    images.append(ExpectedImage(url=str(image["url"]), expect=image["expect"]))
                products.append(
                    ExpectedProduct(
                        external_id=str(p["external_id"]),
                        images=tuple(images),
                        malformed=bool(p.get("malformed", False)),
                    )
                )
            return cls(store_id=str(data["store_id"]), dialect=str(data.get("dialect", "")), products=tuple(products))
        except (KeyError, TypeError) as exc:
            raise CatalogFormatError(f"expected catalog without the documented shape: {exc!r}") from exc


@dataclass(frozen=True)
class JobRow:
    id: str
    company_id: str
    provider: str
    store_id: str
    status: str
    error: str | None = None
    include_images: bool = True


@dataclass(frozen=True)
class ProductRow:
    company_id: str
    external_id: str
    import_source: str


@dataclass(frozen=True)
class ImageRow:
    """One ``product_images`` row, joined to its product's external id."""

    company_id: str
    import_source: str
    external_id: str
    source_url: str
    status: str
    s3_key: str | None = None
    thumbnail_key: str | None = None


@dataclass
class CheckInputs:
    acknowledged: list[AcknowledgedJob]
    jobs: list[JobRow]
    catalogs: dict[str, ExpectedCatalog]  # by store_id
    products: list[ProductRow]
    images: list[ImageRow]
    s3_keys: frozenset[str]
    companies: frozenset[str] = frozenset()  # beyond those of the acknowledged jobs


@dataclass(frozen=True)
class Finding:
    kind: str
    job_id: str = ""
    company_id: str = ""
    source: str = ""
    external_id: str = ""
    url: str = ""
    status: str = ""
    detail: str = ""


@dataclass
class CheckReport:
    """Totals count everything; ``findings`` keep the first DETAIL_LIMIT per category."""

    totals: dict[str, Any] = field(default_factory=dict)
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    truncated: dict[str, int] = field(default_factory=dict)  # category -> findings left out
    failure_reasons: Counter[str] = field(default_factory=Counter)
    sources_unchecked: list[dict[str, str]] = field(default_factory=list)

    def add(self, category: str, finding: Finding) -> None:
        kept = self.findings.setdefault(category, [])
        if len(kept) < DETAIL_LIMIT:
            kept.append(finding)
        else:
            self.truncated[category] = self.truncated.get(category, 0) + 1

    def expected_failure_job_ids(self) -> set[str]:
        return {f.job_id for f in self.findings.get("expected_failures", [])}

    def to_json(self) -> dict[str, Any]:
        return {
            "totals": self.totals,
            "failure_reasons": dict(self.failure_reasons.most_common()),
            "sources_unchecked": self.sources_unchecked,
            "truncated": self.truncated,
            "findings": {k: [asdict(f) for f in v] for k, v in sorted(self.findings.items())},
        }

    @classmethod
    def from_json(cls, data: Any) -> CheckReport:
        try:
            return cls(
                totals=dict(data["totals"]),
                findings={k: [Finding(**f) for f in v] for k, v in data.get("findings", {}).items()},
                truncated=dict(data.get("truncated", {})),
                failure_reasons=Counter(data.get("failure_reasons", {})),
                sources_unchecked=list(data.get("sources_unchecked", [])),
            )
        except (KeyError, TypeError) as exc:
            raise RunDirError(f"checker report without the expected shape: {exc!r}") from exc


def write_check_report(run_dir: Path, report: CheckReport) -> None:
    write_json(run_dir / CHECKER_JSON, report.to_json())


def read_check_report(run_dir: Path) -> CheckReport | None:
    """None when the run has no checker.json (the checker did not run)."""
    path = run_dir / CHECKER_JSON
    if not path.exists():
        return None
    try:
        return CheckReport.from_json(read_json(path))
    except RunDirError as exc:
        raise RunDirError(f"{path}: {exc}") from exc
