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


JOB_OUTCOMES = ("CLEAN", "WITH_REJECTIONS", "UNVERIFIED")


@dataclass(frozen=True)
class ExpectedImage:
    url: str
    expect: Literal["stored", "rejected"]
    code: str | None = None  # the rejection code the importer must give it, when the document says


@dataclass(frozen=True)
class ExpectedProduct:
    external_id: str
    images: tuple[ExpectedImage, ...] = ()
    malformed: bool = False  # a bad record: rejected, never imported (``code`` says why, when given)
    code: str | None = None
    omitted: bool = False  # never listed by the provider's pages (a pagination fault): must not exist

    @property
    def bad(self) -> bool:
        return self.malformed or self.code is not None

    @property
    def absent(self) -> bool:
        """Must not be in the database: rejected, or never served."""
        return self.bad or self.omitted


@dataclass(frozen=True)
class ExpectedCatalog:
    """The fake provider's word on a store: which records are good, which are bad and why.

    ``outcome`` is the job outcome the document declares (``UNVERIFIED`` for pages that do not
    add up); without one it follows from the records: ``WITH_REJECTIONS`` when any record is
    bad, else ``CLEAN``. ``job_status`` is the terminal status it declares (default COMPLETED:
    one bad record never fails a job).
    """

    store_id: str
    dialect: str
    products: tuple[ExpectedProduct, ...]
    outcome: str | None = None
    job_status: str = "COMPLETED"
    verification_issues: tuple[str, ...] = ()  # issue codes the job must report (it may report more)

    @property
    def coded(self) -> bool:
        """The document names rejection codes (its records can be checked code by code)."""
        return any(p.code for p in self.products) or any(i.code for p in self.products for i in p.images)

    @property
    def messy(self) -> bool:
        """It holds bad records or pagination faults: a store the record checks apply to."""
        return (
            self.coded
            or self.outcome not in (None, "CLEAN")
            or bool(self.verification_issues)
            or any(p.absent for p in self.products)
        )

    def expected_outcome(self) -> str:
        if self.outcome is not None:
            return self.outcome
        bad_images = any(i.expect == "rejected" for p in self.products if not p.bad for i in p.images)
        return "WITH_REJECTIONS" if bad_images or any(p.bad for p in self.products) else "CLEAN"

    def expected_rejections(self) -> tuple[Counter[str], int]:
        """(rejections by code, rejections the document gives no code for): products and images."""
        coded: Counter[str] = Counter()
        uncoded = 0
        for p in self.products:
            if p.omitted:
                continue  # never served, so never seen, so never rejected
            if p.bad:
                if p.code:
                    coded[p.code] += 1
                else:
                    uncoded += 1
                continue  # a rejected product's images are never fetched
            for image in p.images:
                if image.expect != "rejected":
                    continue
                if image.code:
                    coded[image.code] += 1
                else:
                    uncoded += 1
        return coded, uncoded

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
                    images.append(
                        ExpectedImage(url=str(image["url"]), expect=image["expect"], code=_code(image.get("code")))
                    )
                expect = p.get("expect", "imported")
                if expect not in ("imported", "rejected", "omitted"):
                    raise CatalogFormatError(f"product expect {expect!r} is not imported|rejected|omitted")
                products.append(
                    ExpectedProduct(
                        external_id=str(p.get("external_id") or ""),
                        images=tuple(images),
                        malformed=(bool(p.get("malformed", False)) or expect == "rejected") and expect != "omitted",
                        code=_code(p.get("code")) if expect != "omitted" else None,
                        omitted=expect == "omitted",
                    )
                )
            counts = data.get("counts") or {}
            outcome = data.get("outcome", counts.get("outcome"))
            if outcome is not None and outcome not in JOB_OUTCOMES:
                raise CatalogFormatError(f"outcome {outcome!r} is not one of {JOB_OUTCOMES}")
            issues = data.get("verification_issues", counts.get("verification_issues")) or ()
            status = str(data.get("job_status") or "COMPLETED")
            return cls(
                store_id=str(data["store_id"]),
                dialect=str(data.get("dialect", "")),
                products=tuple(products),
                outcome=outcome,
                job_status=status,
                verification_issues=tuple(str(i) for i in issues),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise CatalogFormatError(f"expected catalog without the documented shape: {exc!r}") from exc


def _code(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CatalogFormatError(f"a rejection code is a string, not {value!r}")
    return value


@dataclass(frozen=True)
class JobRow:
    id: str
    company_id: str
    provider: str
    store_id: str
    status: str
    error: str | None = None
    include_images: bool = True
    outcome: str | None = None  # CLEAN | WITH_REJECTIONS | UNVERIFIED once COMPLETED (importers with it)
    rejection_counts: dict[str, int] | None = None  # code -> count; None: the importer has no such column
    verification_issues: tuple[str, ...] | None = None  # issue codes the job reported; None: no such column


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
