"""The search index, the usage rollup and the timeline's indexes: the DDL of migration 8, for both databases.

Everything here is kept in step by database triggers, not by the code that writes the rows: a message,
todo, task, question or Linear issue written by anyone (ingest, the worker, the Linear sync, retention,
a person at a `sqlite3` prompt) updates its search entry and its usage figures in the same
transaction, and a deleted row takes them with it.

- `search_documents`: one row per searchable thing (its kind, its row's id, session, agent and time),
  kept for the thing's life, so id order is the order things were created in, which the full-text
  index walks backwards ("newest first") without sorting. The text itself is not copied: it is made
  from the thing's own row (`Source.*_body`) whenever it is needed.
  SQLite indexes the text with FTS5 (`search_text`, contentless: a removed entry is deleted with the
  text made again from the old row), with tags for the filters (kind, agent, session), so a filtered
  search is one full-text query. PostgreSQL keeps a `tsvector` column, GIN-indexed.
  Both see words as runs of letters and digits (PostgreSQL's parser would keep `example.com` or
  `/usr/bin` whole; FTS5 splits them), case-folded, accents kept, no stemming: the same answers.
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
    integer_key: bool  # whether that id is an integer (ref_id holds it as text)
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
    Source("message", "messages", "id", True, ("content", "parts", "session_id"),
           # Parts that never say "tool" hold no tool call: not parsing them saves most of the cost of
           # indexing a streamed text message (the text is in `content` already).
           f"coalesce(@.content, '') || ' ' || CASE WHEN instr(@.parts, '\"tool\"') > 0"
           f" THEN coalesce({SQLITE_MESSAGE_TOOLS}, '') ELSE '' END",
           f"concat_ws(' ', @.content, {POSTGRESQL_MESSAGE_TOOLS})",
           "@.session_id", f"coalesce({SESSION_AGENT}, @.agent)", "coalesce(@.created_at, @.updated_at)"),
    Source("todo", "todos", "id", False, ("content", "session_id"), "@.content", "@.content",
           "@.session_id", f"coalesce({SESSION_AGENT}, @.agent)", "coalesce(@.updated_at, @.created_at)"),
    Source("task", "agent_tasks", "id", False, ("title", "blocked_reason"),
           "@.title || ' ' || coalesce(@.blocked_reason, '')", "concat_ws(' ', @.title, @.blocked_reason)",
           "NULL", "@.agent_id", "coalesce(@.updated_at, @.created_at)"),
    Source("question", "task_questions", "id", True, ("text", "answer"),
           "@.text || ' ' || coalesce(@.answer, '')", "concat_ws(' ', @.text, @.answer)",
           "NULL", "@.agent_id", "@.asked_at"),
    Source("linear_issue", "linear_issues", "id", False, ("title", "identifier"),
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


def indexed_text(source: Source, dialect: str, row: str) -> str:
    """The text of `row` as the index holds it (cut to MAX_INDEXED_CHARS)."""
    body = source.sqlite_body if dialect == "sqlite" else source.postgresql_body
    return f"trim(substr({on_row(body, row)}, 1, {MAX_INDEXED_CHARS}))"


def text_select(source: Source, dialect: str) -> str:
    """SELECT the indexed text of some of the source's rows, by id: `... WHERE r.id IN (...)` follows."""
    return f"SELECT CAST(r.{source.key} AS TEXT), {indexed_text(source, dialect, 'r')} FROM {source.table} AS r"


def document_values(source: Source, row: str) -> str:
    """kind, ref_id, session_id, agent_id, at of `row`'s document."""
    return (f"'{source.kind}', CAST({row}.{source.key} AS TEXT), {on_row(source.session, row)},"
            f" {on_row(source.agent, row)}, {on_row(source.at, row)}")


DOCUMENT_COLUMNS = "search_documents (kind, ref_id, session_id, agent_id, at"


def of_row(source: Source, row: str) -> str:
    """The condition that finds `row`'s document."""
    return f"kind = '{source.kind}' AND ref_id = CAST({row}.{source.key} AS TEXT)"


def tag(prefix: str, text: str) -> str:
    """A filter value as one FTS5 token: the prefix and the value's UTF-8 bytes in hex, so any id is one
    whole word (`agent-7` would be two) that no other id shares. Python's side: `search_tag`."""
    return f"'{prefix}' || hex(coalesce({text}, ''))"


def search_tag(prefix: str, value: str) -> str:
    return prefix + value.encode().hex()


# The filter tags of a document `d`: its kind, agent and session.
SQLITE_TAGS = f"{tag('k', 'd.kind')} || ' ' || {tag('a', 'd.agent_id')} || ' ' || {tag('s', 'd.session_id')}"


# SQLite ---------------------------------------------------------------------------------------------------

def _sqlite_index_statements(source: Source, row: str) -> list[str]:
    """Index `row`: its document, then its text and tags under the document's id."""
    return [f"INSERT INTO {DOCUMENT_COLUMNS}) VALUES ({document_values(source, row)})",
            f"INSERT INTO search_text (rowid, body, tags) SELECT d.id, {indexed_text(source, 'sqlite', row)},"
            f" {SQLITE_TAGS} FROM search_documents AS d WHERE d.id = last_insert_rowid()"]


def _sqlite_unindex_statements(source: Source, row: str) -> list[str]:
    """Take `row` out: its words (a contentless index is told the text it had), then its document."""
    return [f"INSERT INTO search_text (search_text, rowid, body, tags) SELECT 'delete', d.id,"
            f" {indexed_text(source, 'sqlite', row)}, {SQLITE_TAGS} FROM search_documents AS d"
            f" WHERE d.{of_row(source, row)}",
            f"DELETE FROM search_documents WHERE {of_row(source, row)}"]


def _sqlite_reindex_statements(source: Source) -> list[str]:
    """A changed row keeps its document (and id): out go its old words, in its new ones."""
    return [f"INSERT INTO search_text (search_text, rowid, body, tags) SELECT 'delete', d.id,"
            f" {indexed_text(source, 'sqlite', 'old')}, {SQLITE_TAGS} FROM search_documents AS d"
            f" WHERE d.{of_row(source, 'old')}",
            f"UPDATE search_documents SET session_id = {on_row(source.session, 'new')},"
            f" agent_id = {on_row(source.agent, 'new')}, at = {on_row(source.at, 'new')} WHERE {of_row(source, 'old')}"
            f" AND (session_id IS NOT {on_row(source.session, 'new')} OR at IS NOT {on_row(source.at, 'new')})",
            f"INSERT INTO search_text (rowid, body, tags) SELECT d.id, {indexed_text(source, 'sqlite', 'new')},"
            f" {SQLITE_TAGS} FROM search_documents AS d WHERE d.{of_row(source, 'new')}"]


def _sqlite_source_triggers(source: Source) -> list[str]:
    name = f"search_{source.table}"
    changed = " OR ".join(f"old.{column} IS NOT new.{column}" for column in source.watched)
    return [
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {source.table} BEGIN"
        f" {'; '.join(_sqlite_index_statements(source, 'new'))}; END",
        f"CREATE TRIGGER {name}_update AFTER UPDATE OF {', '.join(source.watched)} ON {source.table}"
        f" WHEN {changed} BEGIN {'; '.join(_sqlite_reindex_statements(source))}; END",
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON {source.table} BEGIN"
        f" {'; '.join(_sqlite_unindex_statements(source, 'old'))}; END",
    ]


def _sqlite_backfill(source: Source) -> list[str]:
    return [f"INSERT INTO {DOCUMENT_COLUMNS}) SELECT {document_values(source, 'r')} FROM {source.table} AS r"
            f" ORDER BY 5, 2",
            f"INSERT INTO search_text (rowid, body, tags) SELECT d.id, {indexed_text(source, 'sqlite', 'r')},"
            f" {SQLITE_TAGS} FROM {source.table} AS r JOIN search_documents AS d ON d.kind = '{source.kind}'"
            f" AND d.ref_id = CAST(r.{source.key} AS TEXT)"]


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
    figures_changed = " OR ".join(f"old.{column} IS NOT new.{column}" for column in ("cost", "tokens"))
    same_key = " AND ".join(f"{old} IS {new}" for old, new in zip(usage_key("old"), usage_key("new"), strict=True))
    deltas = ", ".join(f"{column} = {column} + {new} - {old}" for column, new, old
                       in zip(FIGURES, _sqlite_figures("new"), _sqlite_figures("old"), strict=True))
    key = usage_key("new")
    return [
        "CREATE TRIGGER usage_messages_insert AFTER INSERT ON messages WHEN new.role IS 'assistant' BEGIN "
        + "; ".join(_sqlite_usage_apply("new", "+")) + "; END",
        # The common case, a message re-sent with new figures: one update by the difference.
        f"CREATE TRIGGER usage_messages_resent AFTER UPDATE OF {', '.join(USAGE_CHANGES)} ON messages"
        f" WHEN old.role IS 'assistant' AND new.role IS 'assistant' AND {same_key} AND ({figures_changed})"
        f" BEGIN UPDATE usage_rollup SET {deltas} WHERE session_id = {key[0]} AND model_id = {key[1]}"
        f" AND hour = {key[2]}; END",
        # It moved (another session, model or hour) or became, or stopped being, an assistant's.
        f"CREATE TRIGGER usage_messages_moved AFTER UPDATE OF {', '.join(USAGE_CHANGES)} ON messages"
        f" WHEN (old.role IS 'assistant' OR new.role IS 'assistant') AND NOT (old.role IS 'assistant'"
        f" AND new.role IS 'assistant' AND {same_key}) BEGIN "
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

# WITHOUT ROWID (SQLite): rows stored in key order, so summing them per session reads the table in
# order instead of looking each row up through the key's index.
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
    ) WITHOUT ROWID"""

COMMON = (
    USAGE_TABLE,
    "CREATE INDEX usage_rollup_hour ON usage_rollup (hour)",
    "CREATE INDEX inbound_events_agent ON inbound_events (agent_id, received_at)",
)

DOCUMENTS_TABLE = """CREATE TABLE search_documents (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            ref_id TEXT NOT NULL,
            session_id TEXT,
            agent_id TEXT,
            at INTEGER
        )"""


def usage_backfill(figures: list[str]) -> str:
    key = usage_key("r")
    return (f"INSERT INTO {ROLLUP_COLUMNS} SELECT {', '.join(key)}, {', '.join(f'SUM({f})' for f in figures)},"
            f" COUNT(*) FROM messages AS r WHERE r.role = 'assistant' GROUP BY {', '.join(key)}")


# How many index segments FTS5 lets pile up on a level before merging them (its default is 4): merging
# less often makes each write cheaper (ingest writes small transactions), a search reads a few more
# segments (still well under a millisecond).
FTS_AUTOMERGE = 16


def sqlite_statements() -> tuple[str, ...]:
    return (
        DOCUMENTS_TABLE,
        "CREATE UNIQUE INDEX search_documents_ref ON search_documents (kind, ref_id)",
        "CREATE VIRTUAL TABLE search_text USING fts5(body, tags, content='', tokenize='unicode61 remove_diacritics 0')",
        f"INSERT INTO search_text (search_text, rank) VALUES ('automerge', {FTS_AUTOMERGE})",
        *COMMON,
        f"CREATE INDEX inbound_events_session ON inbound_events ({SQLITE_EVENT_SESSION}, received_at)",
        *(statement for source in SOURCES for statement in _sqlite_backfill(source)),
        usage_backfill(_sqlite_figures("r")),
        *(trigger for source in SOURCES for trigger in _sqlite_source_triggers(source)),
        *_sqlite_usage_triggers(),
    )


# PostgreSQL -----------------------------------------------------------------------------------------------

POSTGRESQL_HELPERS = (
    # Text columns holding JSON are read through this: text that is not JSON (or that jsonb refuses,
    # like "\\u0000") is NULL rather than an error that would fail the write.
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


def postgresql_words(source: Source, row: str) -> str:
    """The tsvector of `row`'s text: words as FTS5 sees them (runs of letters and digits)."""
    text = indexed_text(source, "postgresql", row)
    return f"to_tsvector('simple', regexp_replace({text}, '[^[:alnum:]]+', ' ', 'g'))"


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
            IF TG_OP = 'DELETE' THEN
                DELETE FROM search_documents WHERE {of_row(source, 'old')};
                RETURN NULL;
            END IF;
            r := new;
            INSERT INTO {DOCUMENT_COLUMNS}, words)
            VALUES ({document_values(source, 'r')}, {postgresql_words(source, 'r')})
            ON CONFLICT (kind, ref_id) DO UPDATE SET session_id = excluded.session_id,
                agent_id = excluded.agent_id, at = excluded.at, words = excluded.words;
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
        DOCUMENTS_TABLE.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
        .replace(" INTEGER", " BIGINT").replace("\n        )", ",\n            words tsvector NOT NULL\n        )"),
        "CREATE UNIQUE INDEX search_documents_ref ON search_documents (kind, ref_id)",
        "CREATE INDEX search_documents_words ON search_documents USING GIN (words)",
        *(statement.replace(" INTEGER", " BIGINT").replace(" REAL", " DOUBLE PRECISION").replace(" WITHOUT ROWID", "")
          for statement in COMMON),
        f"CREATE INDEX inbound_events_session ON inbound_events ({POSTGRESQL_EVENT_SESSION}, received_at)",
        *(f"INSERT INTO {DOCUMENT_COLUMNS}, words) SELECT {document_values(source, 'r')},"
          f" {postgresql_words(source, 'r')} FROM {source.table} AS r ORDER BY 5, 2" for source in SOURCES),
        usage_backfill(_postgresql_figures("r")),
        *(statement for source in SOURCES for statement in _postgresql_source_trigger(source)),
        *_postgresql_usage_functions(),
    )
