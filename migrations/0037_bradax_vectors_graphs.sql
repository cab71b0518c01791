-- bradax vectors and graphs (issue 15 items 11 and 12). Every row belongs to one organization
-- (a bradax project) and every query is scoped to it.

-- A vector collection: its dimension is fixed by the first upsert. `version` goes up by one
-- with every upsert (in the upsert's transaction, under this row's lock), so a reader that
-- holds a collection's vectors in memory knows what changed: the documents whose `version` is
-- above the one it loaded.
CREATE TABLE vector_collection (
    vector_collection_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id       uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    name                  text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'),
    dimension             integer NOT NULL CHECK (dimension BETWEEN 1 AND 4096),
    version               bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vector_collection_org_name_key UNIQUE (organization_id, name)
);

-- A document of a collection: its id is the caller's text; `vector` has the collection's
-- dimension (checked by the application under the collection's lock), every element finite,
-- `norm` its Euclidean norm (> 0: a zero vector has no direction), computed once at upsert.
CREATE TABLE vector_document (
    vector_collection_id  uuid NOT NULL REFERENCES vector_collection (vector_collection_id) ON DELETE CASCADE,
    document_id           text NOT NULL CHECK (char_length(document_id) BETWEEN 1 AND 256),
    vector                real[] NOT NULL CHECK (array_ndims(vector) = 1),
    norm                  real NOT NULL CHECK (norm > 0),
    metadata              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    text                  text,
    -- the collection's version written by the upsert that last wrote this row
    version               bigint NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vector_collection_id, document_id)
);
-- what changed since a version: the in-memory copy's refresh
CREATE INDEX vector_document_version_idx ON vector_document (vector_collection_id, version);
-- vectors of random-looking floats do not compress: store them out of line without trying
ALTER TABLE vector_document ALTER COLUMN vector SET STORAGE EXTERNAL;

-- A deployed graph: stable id per (organization, name); `version` is "1.<revision>.0", the
-- revision going up by one whenever a deploy changes the parsed definition. `source` is the
-- text as sent; `definition` the parsed, checked graph the runner executes.
CREATE TABLE graph (
    graph_id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'),
    revision         integer NOT NULL DEFAULT 0 CHECK (revision >= 0),
    format           text NOT NULL CHECK (format IN ('yaml', 'json')),
    source           text NOT NULL CHECK (octet_length(source) <= 262144),
    definition       jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT graph_org_name_key UNIQUE (organization_id, name)
);

-- Every version a graph had (what an execution ran is kept even after a later deploy).
CREATE TABLE graph_version (
    graph_id    uuid NOT NULL REFERENCES graph (graph_id) ON DELETE CASCADE,
    revision    integer NOT NULL CHECK (revision >= 0),
    format      text NOT NULL CHECK (format IN ('yaml', 'json')),
    source      text NOT NULL,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (graph_id, revision)
);

-- One execution of a graph: `running` until it ends `completed` or `failed` (with `error`);
-- `usage` sums the metered calls its nodes made.
CREATE TABLE graph_execution (
    graph_execution_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    graph_id            uuid NOT NULL REFERENCES graph (graph_id) ON DELETE CASCADE,
    organization_id     uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    api_key_id          uuid REFERENCES api_key (api_key_id) ON DELETE SET NULL,
    revision            integer NOT NULL,
    status              text NOT NULL DEFAULT 'running'
                        CHECK (status IN ('running', 'completed', 'failed')),
    inputs              jsonb NOT NULL,
    outputs             jsonb,
    usage               jsonb,
    error               text,
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz
);
CREATE INDEX graph_execution_graph_idx ON graph_execution (graph_id, started_at DESC);
