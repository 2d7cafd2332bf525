-- Hardening (issue: hostile input, long outages, noisy tenants): one migration for the schema
-- every part of that work shares, so the parts never race each other for a version number.

-- Per-record isolation: a completed job says whether it is clean, completed with rejected
-- records, or could not be verified (pages that do not add up). NULL until the job completes.
ALTER TABLE product_import_jobs
    ADD COLUMN outcome text CHECK (outcome IN ('CLEAN', 'WITH_REJECTIONS', 'UNVERIFIED')),
    ADD COLUMN products_rejected integer NOT NULL DEFAULT 0,
    -- code -> count of every rejected record (products and images), e.g. {"price_out_of_range": 3}
    ADD COLUMN rejection_counts jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- what the job could not verify about the catalog, as codes with a short detail each
    ADD COLUMN verification_issues jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- Stalls are judged by the lease: each claim starts a run with its own start time.
    ADD COLUMN run_started_at timestamptz,
    -- Idempotent intake: same key + same body -> the same job; the hash is of the canonical body.
    ADD COLUMN idempotency_key text,
    ADD COLUMN request_hash text;

-- A stalled job is one whose run stopped renewing its heartbeat, not one that started long ago.
CREATE INDEX idx_job_in_progress_heartbeat ON product_import_jobs (heartbeat_at) WHERE status = 'IN_PROGRESS';

CREATE UNIQUE INDEX idx_job_idempotency_key
    ON product_import_jobs (company_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- One active job per (company, provider, store): a second submit returns the running job.
-- Rows that would break the rule (from before this migration) are left active; the newest
-- duplicate keeps running and the older ones are cancelled with a reason, never deleted.
UPDATE product_import_jobs j
   SET status = 'CANCELLED', finished_at = now(), updated_at = now(), run_token = NULL,
       error = 'cancelled by migration 0002: a newer active job imports the same store'
 WHERE status IN ('PENDING', 'IN_PROGRESS')
   AND EXISTS (SELECT 1 FROM product_import_jobs n
                WHERE n.company_id = j.company_id AND n.provider = j.provider AND n.store_id = j.store_id
                  AND n.status IN ('PENDING', 'IN_PROGRESS')
                  AND (n.created_at, n.id) > (j.created_at, j.id));
CREATE UNIQUE INDEX idx_job_one_active_per_store
    ON product_import_jobs (company_id, provider, store_id) WHERE status IN ('PENDING', 'IN_PROGRESS');

-- Rejected records, kept per job with a code and a readable reason (the first N per job; the
-- job row's counts include every one). Image rejections stay on product_images as well.
CREATE TABLE import_rejections (
    id            bigserial PRIMARY KEY,
    job_id        uuid NOT NULL REFERENCES product_import_jobs (id) ON DELETE CASCADE,
    company_id    uuid NOT NULL REFERENCES companies (id),
    kind          text NOT NULL CHECK (kind IN ('product', 'image', 'page')),
    external_id   text,
    page_cursor   text,
    position      integer,
    code          text NOT NULL,
    reason        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_rejections_job ON import_rejections (job_id, id);

ALTER TABLE product_images
    ADD COLUMN error_code text,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0;
