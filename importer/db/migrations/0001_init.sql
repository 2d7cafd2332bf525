-- Companies are tenants; API keys are stored as SHA-256 digests of high-entropy random tokens
-- (a slow password hash buys nothing for 256-bit random secrets and would cost every request).
CREATE TABLE companies (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    tier        text NOT NULL CHECK (tier IN ('BASIC', 'PRO', 'ENTERPRISE')),
    vip         boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id  uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    key_hash    text NOT NULL UNIQUE,
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- The job row is the state of record; Redis only holds the queue. The arq job id is this id.
CREATE TABLE product_import_jobs (
    id                  uuid PRIMARY KEY,
    company_id          uuid NOT NULL REFERENCES companies (id),
    provider            text NOT NULL CHECK (provider IN ('roastify', 'shopify')),
    store_id            text NOT NULL,
    include_images      boolean NOT NULL DEFAULT true,
    status              text NOT NULL DEFAULT 'PENDING'
                        CHECK (status IN ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED')),
    -- checkpoint: which phase the job is in and the provider cursor of the next page to fetch
    phase               text NOT NULL DEFAULT 'queued'
                        CHECK (phase IN ('queued', 'products', 'images', 'done')),
    page_cursor         text,
    pages_fetched       integer NOT NULL DEFAULT 0,
    -- fencing token of the run that currently owns the job; checkpoints of any other run are refused
    run_token           uuid,
    worker_id           text,
    attempts            integer NOT NULL DEFAULT 0,   -- runs started (claims), hand-backs included
    queue_try           integer NOT NULL DEFAULT 0,   -- arq's try number of the latest run
    error               text,
    correlation_id      text,
    products_imported   integer NOT NULL DEFAULT 0,
    images_total        integer NOT NULL DEFAULT 0,
    images_stored       integer NOT NULL DEFAULT 0,
    images_rejected     integer NOT NULL DEFAULT 0,
    thumbnails_created  integer NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    heartbeat_at        timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- The seed's four indexes, the last two partial.
CREATE INDEX idx_job_company_status ON product_import_jobs (company_id, status);
CREATE INDEX idx_job_status_created ON product_import_jobs (status, created_at);
CREATE INDEX idx_job_pending_created ON product_import_jobs (status, created_at) WHERE status = 'PENDING';
CREATE INDEX idx_job_in_progress_started ON product_import_jobs (status, started_at) WHERE status = 'IN_PROGRESS';
-- Queue health counts failures of the last hour.
CREATE INDEX idx_job_failed_finished ON product_import_jobs (finished_at) WHERE status = 'FAILED';

-- import_source is "<provider>:<store_id>", so two stores of one company never collide.
CREATE TABLE products (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id      uuid NOT NULL REFERENCES companies (id),
    external_id     text NOT NULL,
    import_source   text NOT NULL,
    title           text NOT NULL,
    description     text NOT NULL DEFAULT '',
    price_cents     bigint,
    currency        text,
    last_job_id     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT products_company_external_source_key UNIQUE (company_id, external_id, import_source)
);

CREATE TABLE product_images (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id      uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    company_id      uuid NOT NULL REFERENCES companies (id),
    import_source   text NOT NULL,
    source_url      text NOT NULL,
    position        integer NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'STORED', 'REJECTED')),
    s3_key          text,
    thumbnail_key   text,
    content_type    text,
    byte_size       integer,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT product_images_product_url_key UNIQUE (product_id, source_url)
);
CREATE INDEX idx_images_source_status ON product_images (company_id, import_source, status);
