"""The search index, the usage rollup and the timeline's indexes: the DDL of migration 8, for both databases.

Everything here is kept in step by database triggers, not by the code that writes the rows: a message,
todo, task, question or Linear issue written by anyone (ingest, the worker, the Linear sync, retention,
a person at a `sqlite3` prompt) updates its search document and its usage figures in the same
transaction, and a deleted row takes them with it.

- `search_documents`: one row per searchable thing (kind, the row's id, its session, agent and time,
  and the text). A changed thing gets a new row (a new, larger id), so id order is "most recently
  written first", which the full-text index can walk backwards without sorting.
  SQLite indexes the text with FTS5 (`search_text`, an external-content table over it); PostgreSQL
  with a `tsvector` column and a GIN index. Both see words as runs of letters and digits (PostgreSQL's
  parser would keep `example.com` or `/usr/bin` whole; FTS5 splits them), case-folded, accents kept,
  no stemming, so both give the same answers.
- `usage_rollup`: an assistant message's tokens and cost, summed per session, model and hour. A
  message re-sent while it streams replaces its figures: the trigger takes the old ones out and puts
  the new ones in, so each message counts once, with its latest figures.
- The timeline reads `inbound_events`, filtered by the session an event is about: an index on that
  expression (`EVENT_SESSION`), and one on the sender.
"""

from __future__ import annotations

from dataclasses import dataclass

# The indexed text of one thing is cut here: enough for any message a person reads, and PostgreSQL's
# tsvector refuses more than 1 MB.
MAX_INDEXED_CHARS = 100_000

# A token count or cost beyond this is no real figure (a unit mistake, a test): it counts as 0, so
# one absurd message cannot overflow a sum (PostgreSQL raises on a float overflow).
MAX_FIGURE = 1e15

KINDS = ("message", "todo", "task", "question", "linear_issue")


@dataclass(frozen=True)
class Source:
    """A table whose rows are searchable: which columns make a document, in each dialect."""

    kind: str
    table: str
    key: str  # the row's id column
    watched: tuple[str, ...]  # a change to any of these rewrites the document
    sqlite_body: str  # SQL over `@` (the row: new or old in a trigger, the table in the backfill)
    postgresql_body: str
    session: str
    agent: str
    at: str


# A message's tool calls: the tool, its input and its output, from the message's parts (tool messages
# keep `args`/`output`; opencode's tool parts keep `state.input`/`state.output`).
SQLITE_MESSAGE_TOOLS = (
    "(SELECT group_concat(coalesce(json_extract(p.value, '$.tool'), '') || ' '"
    " || coalesce(json_extract(p.value, '$.args'), json_extract(p.value, '$.state.input'), '') || ' '"
    " || coalesce(json_extract(p.value, '$.output'), json_extract(p.value, '$.state.output'), ''), ' ')"
    " FROM json_each(CASE WHEN json_valid(@.parts) THEN @.parts ELSE '[]' END) AS p"
    " WHERE CASE WHEN p.type = 'object' THEN json_extract(p.value, '$.type') IS NOT 'text' ELSE 0 END)")
POSTGRESQL_MESSAGE_TOOLS = (
    "(SELECT string_agg(concat_ws(' ', p->>'tool', coalesce(p->>'args', p#>>'{state,input}'),"
    " coalesce(p->>'output', p#>>'{state,output}')), ' ')"
    " FROM jsonb_array_elements(CASE WHEN jsonb_typeof(search_json(@.parts)) = 'array'"
    " THEN search_json(@.parts) ELSE '[]'::jsonb END) AS p"
    " WHERE jsonb_typeof(p) = 'object' AND p->>'type' IS DISTINCT FROM 'text')")

SESSION_AGENT = "(SELECT s.agent_id FROM sessions s WHERE s.id = @.session_id)"

SOURCES = (
    Source("message", "messages", "id", ("content", "parts", "session_id"),
           f"coalesce(@.content, '') || ' ' || coalesce({SQLITE_MESSAGE_TOOLS}, '')",
           f"concat_ws(' ', @.content, {POSTGRESQL_MESSAGE_TOOLS})",
           "@.session_id", f"coalesce({SESSION_AGENT}, @.agent)", "coalesce(@.created_at, @.updated_at)"),
    Source("todo", "todos", "id", ("content", "session_id"), "@.content", "@.content",
           "@.session_id", f"coalesce({SESSION_AGENT}, @.agent)", "coalesce(@.updated_at, @.created_at)"),
    Source("task", "agent_tasks", "id", ("title", "blocked_reason"),
           "@.title || ' ' || coalesce(@.blocked_reason, '')", "concat_ws(' ', @.title, @.blocked_reason)",
           "NULL", "@.agent_id", "coalesce(@.updated_at, @.created_at)"),
    Source("question", "task_questions", "id", ("text", "answer"),
           "@.text || ' ' || coalesce(@.answer, '')", "concat_ws(' ', @.text, @.answer)",
           "NULL", "@.agent_id", "@.asked_at"),
    Source("linear_issue", "linear_issues", "id", ("title", "identifier"),
           "coalesce(@.identifier, '') || ' ' || @.title", "concat_ws(' ', @.identifier, @.title)",
           "NULL", "(SELECT t.agent_id FROM agent_tasks t WHERE t.id = @.agent_task_id)",
           "coalesce(@.updated_at, @.synced_at)"),
)

# The usage figures of one message, as (rollup column, path in its `tokens` JSON).
TOKEN_FIGURES = (("input", "$.input"), ("output", "$.output"), ("reasoning", "$.reasoning"),
                 ("cache_read", "$.cache.read"), ("cache_write", "$.cache.write"))
FIGURES = (*(column for column, _ in TOKEN_FIGURES), "cost")
USAGE_CHANGES = ("role", "cost", "tokens", "session_id", "model_id", "created_at")


def on_row(sql: str, row: str) -> str:
    """`sql` written over the row `@`, made to read `row` (new, old, or a table alias)."""
    return sql.replace("@.", f"{row}.")


def document_select(source: Source, body: str, row: str, from_table: bool) -> str:
    """SELECT the search document of `row` (every row of the table when `from_table`): kind, ref_id,
    session, agent, time and text, skipping things with no text."""
    fields = ", ".join(f"{on_row(sql, row)} AS {name}" for sql, name
                       in ((source.session, "session_id"), (source.agent, "agent_id"), (source.at, "at")))
    source_rows = f" FROM {source.table} AS {row}" if from_table else ""
    return (f"SELECT * FROM (SELECT '{source.kind}' AS kind, CAST({row}.{source.key} AS TEXT) AS ref_id, {fields},"
            f" trim(substr({on_row(body, row)}, 1, {MAX_INDEXED_CHARS})) AS body{source_rows}) AS d"
            f" WHERE d.body <> ''")


DOCUMENT_COLUMNS = "search_documents (kind, ref_id, session_id, agent_id, at, body)"


# SQLite ---------------------------------------------------------------------------------------------------

def _sqlite_document_delete(source: Source, row: str) -> str:
    return f"DELETE FROM search_documents WHERE kind = '{source.kind}' AND ref_id = CAST({row}.{source.key} AS TEXT)"


def _sqlite_source_triggers(source: Source) -> list[str]:
    name = f"search_{source.table}"
    changed = " OR ".join(f"old.{column} IS NOT new.{column}" for column in source.watched)
    insert = f"INSERT INTO {DOCUMENT_COLUMNS} {document_select(source, source.sqlite_body, 'new', False)}"
    return [
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {source.table} BEGIN {insert}; END",
        f"CREATE TRIGGER {name}_update AFTER UPDATE OF {', '.join(source.watched)} ON {source.table}"
        f" WHEN {changed} BEGIN {_sqlite_document_delete(source, 'old')}; {insert}; END",
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON {source.table} BEGIN"
        f" {_sqlite_document_delete(source, 'old')}; END",
    ]


def _sqlite_figure(row: str, path: str | None) -> str:
    """One figure of a message row (`path` in its tokens JSON, None for its cost), or 0 when it is
    missing, not a number or absurd."""
    if path is None:
        return f"(CASE WHEN abs({row}.cost) <= {MAX_FIGURE} THEN {row}.cost ELSE 0 END)"
    return (f"(CASE WHEN json_valid({row}.tokens) THEN CASE WHEN json_type({row}.tokens, '{path}') IN"
            f" ('integer', 'real') AND abs(json_extract({row}.tokens, '{path}')) <= {MAX_FIGURE}"
            f" THEN json_extract({row}.tokens, '{path}') ELSE 0 END ELSE 0 END)")


def _sqlite_figures(row: str) -> list[str]:
    return [*(_sqlite_figure(row, path) for _, path in TOKEN_FIGURES), _sqlite_figure(row, None)]


def usage_key(row: str) -> tuple[str, str, str]:
    """The rollup row a message counts in: its session, its model, the hour it was created in."""
    return (f"coalesce({row}.session_id, '')", f"coalesce({row}.model_id, '')",
            f"coalesce({row}.created_at, {row}.updated_at, 0) / 3600 * 3600")


ROLLUP_COLUMNS = f"usage_rollup (session_id, model_id, hour, {', '.join(FIGURES)}, messages)"


def _sqlite_usage_apply(row: str, sign: str) -> list[str]:
    """Add (`sign` '+') or take out ('-') an assistant message's figures."""
    key = usage_key(row)
    statements = [
        f"INSERT INTO {ROLLUP_COLUMNS} SELECT {', '.join(key)},"
        f" {', '.join(sign + figure for figure in _sqlite_figures(row))}, {sign}1 WHERE {row}.role IS 'assistant'"
        f" ON CONFLICT (session_id, model_id, hour) DO UPDATE SET"
        f" {', '.join(f'{c} = {c} + excluded.{c}' for c in (*FIGURES, 'messages'))}"]
    if sign == "-":
        statements.append(f"DELETE FROM usage_rollup WHERE session_id = {key[0]} AND model_id = {key[1]}"
                          f" AND hour = {key[2]} AND messages <= 0")
    return statements


def _sqlite_usage_triggers() -> list[str]:
    changed = " OR ".join(f"old.{column} IS NOT new.{column}" for column in USAGE_CHANGES)
    return [
        "CREATE TRIGGER usage_messages_insert AFTER INSERT ON messages WHEN new.role IS 'assistant' BEGIN "
        + "; ".join(_sqlite_usage_apply("new", "+")) + "; END",
        f"CREATE TRIGGER usage_messages_update AFTER UPDATE OF {', '.join(USAGE_CHANGES)} ON messages"
        f" WHEN (old.role IS 'assistant' OR new.role IS 'assistant') AND ({changed}) BEGIN "
        + "; ".join([*_sqlite_usage_apply("old", "-"), *_sqlite_usage_apply("new", "+")]) + "; END",
        "CREATE TRIGGER usage_messages_delete AFTER DELETE ON messages WHEN old.role IS 'assistant' BEGIN "
        + "; ".join(_sqlite_usage_apply("old", "-")) + "; END",
    ]


# The session an inbound event is about, as its index and the timeline's filter spell it.
SQLITE_EVENT_SESSION = (
    "coalesce(json_extract(data, '$.sessionID'), json_extract(data, '$.part.sessionID'),"
    " json_extract(data, '$.info.sessionID'),"
    " CASE WHEN substr(type, 1, 8) = 'session.' THEN json_extract(data, '$.info.id') END)")
POSTGRESQL_EVENT_SESSION = "event_session_id(type, data)"

USAGE_TABLE = """CREATE TABLE usage_rollup (
        session_id TEXT NOT NULL,
        model_id TEXT NOT NULL,
        hour INTEGER NOT NULL,
        input REAL NOT NULL DEFAULT 0,
        output REAL NOT NULL DEFAULT 0,
        reasoning REAL NOT NULL DEFAULT 0,
        cache_read REAL NOT NULL DEFAULT 0,
        cache_write REAL NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0,
        messages INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (session_id, model_id, hour)
    )"""

COMMON = (
    USAGE_TABLE,
    "CREATE INDEX usage_rollup_hour ON usage_rollup (hour)",
    "CREATE INDEX inbound_events_agent ON inbound_events (agent_id, received_at)",
)


def backfill(dialect_body: str, figures: list[str]) -> tuple[str, ...]:
    """Fill the index and the rollup from the rows already there, oldest first (ids follow time)."""
    documents = tuple(
        f"INSERT INTO {DOCUMENT_COLUMNS} {document_select(source, getattr(source, dialect_body), 'r', True)}"
        f" ORDER BY at, ref_id" for source in SOURCES)
    key = usage_key("r")
    usage = (f"INSERT INTO {ROLLUP_COLUMNS} SELECT {', '.join(key)}, {', '.join(f'SUM({f})' for f in figures)},"
             f" COUNT(*) FROM messages AS r WHERE r.role = 'assistant' GROUP BY {', '.join(key)}")
    return (*documents, usage)


def sqlite_statements() -> tuple[str, ...]:
    return (
        """CREATE TABLE search_documents (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            ref_id TEXT NOT NULL,
            session_id TEXT,
            agent_id TEXT,
            at INTEGER,
            body TEXT NOT NULL
        )""",
        "CREATE UNIQUE INDEX search_documents_ref ON search_documents (kind, ref_id)",
        # The words of every document; external content, so the text is stored once, in search_documents.
        "CREATE VIRTUAL TABLE search_text USING fts5(body, content='search_documents', content_rowid='id',"
        " tokenize='unicode61 remove_diacritics 0')",
        "CREATE TRIGGER search_text_insert AFTER INSERT ON search_documents BEGIN"
        " INSERT INTO search_text (rowid, body) VALUES (new.id, new.body); END",
        "CREATE TRIGGER search_text_delete AFTER DELETE ON search_documents BEGIN"
        " INSERT INTO search_text (search_text, rowid, body) VALUES ('delete', old.id, old.body); END",
        *COMMON,
        f"CREATE INDEX inbound_events_session ON inbound_events ({SQLITE_EVENT_SESSION}, received_at)",
        *backfill("sqlite_body", _sqlite_figures("r")),
        *(trigger for source in SOURCES for trigger in _sqlite_source_triggers(source)),
        *_sqlite_usage_triggers(),
    )


# PostgreSQL -----------------------------------------------------------------------------------------------

POSTGRESQL_HELPERS = (
    # Text columns holding JSON are read through this: text that is not JSON (or that jsonb refuses,
    # like "\u0000") is NULL rather than an error that would fail the write.
    """CREATE FUNCTION search_json(value TEXT) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        RETURN value::jsonb;
    EXCEPTION WHEN others THEN
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION event_session_id(event_type TEXT, data TEXT) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE AS $$
    DECLARE
        document jsonb := search_json(data);
    BEGIN
        IF jsonb_typeof(document) IS DISTINCT FROM 'object' THEN
            RETURN NULL;
        END IF;
        RETURN coalesce(document->>'sessionID', document#>>'{part,sessionID}', document#>>'{info,sessionID}',
                        CASE WHEN substr(event_type, 1, 8) = 'session.' THEN document#>>'{info,id}' END);
    END $$""",
    f"""CREATE FUNCTION usage_figure(value jsonb) RETURNS DOUBLE PRECISION LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN jsonb_typeof(value) = 'number' AND abs(value::text::double precision) <= {MAX_FIGURE}
                    THEN value::text::double precision ELSE 0 END
    $$""",
)


def _postgresql_source_trigger(source: Source) -> list[str]:
    name = f"search_{source.table}"
    changed = " OR ".join(f"old.{column} IS DISTINCT FROM new.{column}" for column in source.watched)
    return [
        f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            r {source.table};
        BEGIN
            IF TG_OP = 'UPDATE' AND NOT ({changed}) THEN
                RETURN NULL;
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                DELETE FROM search_documents WHERE kind = '{source.kind}' AND ref_id = old.{source.key}::text;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                r := new;
                INSERT INTO {DOCUMENT_COLUMNS} {document_select(source, source.postgresql_body, 'r', False)};
            END IF;
            RETURN NULL;
        END $$""",
        f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {source.table}"
        f" FOR EACH ROW EXECUTE FUNCTION {name}()",
    ]


def _postgresql_figures(row: str) -> list[str]:
    paths = ["{" + path[2:].replace(".", ",") + "}" for _, path in TOKEN_FIGURES]
    return [*(f"usage_figure(search_json({row}.tokens) #> '{path}')" for path in paths),
            f"usage_figure(to_jsonb({row}.cost))"]


def _postgresql_usage_functions() -> list[str]:
    key = usage_key("r")
    changed = " OR ".join(f"old.{column} IS DISTINCT FROM new.{column}" for column in USAGE_CHANGES)
    return [
        f"""CREATE FUNCTION usage_apply(r messages, sign INTEGER) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            IF r.role IS DISTINCT FROM 'assistant' THEN
                RETURN;
            END IF;
            INSERT INTO {ROLLUP_COLUMNS}
            VALUES ({', '.join(key)}, {', '.join(f'sign * {f}' for f in _postgresql_figures('r'))}, sign)
            ON CONFLICT (session_id, model_id, hour) DO UPDATE SET
                {', '.join(f'{c} = usage_rollup.{c} + excluded.{c}' for c in (*FIGURES, 'messages'))};
            IF sign < 0 THEN
                DELETE FROM usage_rollup WHERE session_id = {key[0]} AND model_id = {key[1]} AND hour = {key[2]}
                    AND messages <= 0;
            END IF;
        END $$""",
        f"""CREATE FUNCTION usage_messages() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND NOT ({changed}) THEN
                RETURN NULL;
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                PERFORM usage_apply(old, -1);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                PERFORM usage_apply(new, 1);
            END IF;
            RETURN NULL;
        END $$""",
        "CREATE TRIGGER usage_messages AFTER INSERT OR UPDATE OR DELETE ON messages"
        " FOR EACH ROW EXECUTE FUNCTION usage_messages()",
    ]


def postgresql_statements() -> tuple[str, ...]:
    return (
        *POSTGRESQL_HELPERS,
        """CREATE TABLE search_documents (
            id BIGSERIAL PRIMARY KEY,
            kind TEXT NOT NULL,
            ref_id TEXT NOT NULL,
            session_id TEXT,
            agent_id TEXT,
            at BIGINT,
            body TEXT NOT NULL,
            words tsvector GENERATED ALWAYS AS
                (to_tsvector('simple', regexp_replace(body, '[^[:alnum:]]+', ' ', 'g'))) STORED
        )""",
        "CREATE UNIQUE INDEX search_documents_ref ON search_documents (kind, ref_id)",
        "CREATE INDEX search_documents_words ON search_documents USING GIN (words)",
        *(statement.replace(" INTEGER", " BIGINT").replace(" REAL", " DOUBLE PRECISION") for statement in COMMON),
        f"CREATE INDEX inbound_events_session ON inbound_events ({POSTGRESQL_EVENT_SESSION}, received_at)",
        *backfill("postgresql_body", _postgresql_figures("r")),
        *(statement for source in SOURCES for statement in _postgresql_source_trigger(source)),
        *_postgresql_usage_functions(),
    )
