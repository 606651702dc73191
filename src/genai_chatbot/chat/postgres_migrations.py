"""The PostgreSQL schema: migrations appended to `MIGRATIONS`, never edited, each recorded in `_migrations`.

`migrate` applies the missing ones, each in its own transaction under an advisory lock, so replicas that
start together apply each migration once. A database that records a migration this code does not know was
upgraded by a newer version: `SchemaTooNewError` refuses it rather than writing rows that version may not
read. The tables mirror the SQLite store's (`sqlite_store.py`): sessions, messages with their feedback and
the owner of a `streaming` answer, users and API keys.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import DictRow

#: Held (per transaction) while migrating, so two replicas starting at once never apply one migration twice.
MIGRATION_LOCK = 0x6761695F6D696772  # "gai_migr"

MIGRATIONS: list[tuple[str, str]] = [
    (
        "m001_sessions_and_messages",
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            title TEXT NOT NULL,
            model_id TEXT NOT NULL,
            system_prompt TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX sessions_by_user ON sessions (user_id, updated_at DESC);
        CREATE TABLE messages (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            status TEXT NOT NULL,
            model_id TEXT,
            params TEXT NOT NULL,
            error TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            latency_ms DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL,
            feedback_rating TEXT,
            feedback_comment TEXT,
            feedback_at DOUBLE PRECISION,
            owner TEXT
        );
        CREATE INDEX messages_by_session ON messages (session_id, seq);
        -- The database, not a process, enforces one turn at a time per session: it holds across replicas.
        CREATE UNIQUE INDEX one_streaming_turn_per_session ON messages (session_id) WHERE status = 'streaming'
        """,
    ),
    (
        "m002_users_and_api_keys",
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'user')),
            groups_json TEXT NOT NULL DEFAULT '[]',
            disabled BOOLEAN NOT NULL DEFAULT FALSE,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE api_keys (
            prefix TEXT PRIMARY KEY,
            secret_sha256 TEXT NOT NULL,
            user_name TEXT NOT NULL REFERENCES users (name),
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            revoked_at DOUBLE PRECISION,
            last_used_at DOUBLE PRECISION
        );
        CREATE INDEX api_keys_by_user ON api_keys (user_name, created_at)
        """,
    ),
    (
        # Numbered as the SQLite store's migration of the same tables (governance/postgres_store.py).
        "m005_group_policies_and_audit_log",
        """
        CREATE TABLE group_policies (
            name TEXT PRIMARY KEY,
            policy_json TEXT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            updated_by TEXT NOT NULL
        );
        CREATE TABLE audit_log (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail_json TEXT NOT NULL
        );
        CREATE INDEX audit_log_by_time ON audit_log (at);
        CREATE INDEX audit_log_by_actor ON audit_log (actor, at)
        """,
    ),
    (
        "m006_usage_and_limits",
        """
        -- Usage rolled up per UTC day: one row per (day, user, group, model), incremented by each turn.
        -- group_name '' is the user's own row (every turn once), and a turn also counts, whole, in one row per
        -- governed group of its user (governance/usage.py says which), so group rows overlap.
        CREATE TABLE usage_daily (
            day TEXT NOT NULL,
            user_id TEXT NOT NULL,
            group_name TEXT NOT NULL,
            model_id TEXT NOT NULL,
            requests BIGINT NOT NULL DEFAULT 0,
            failed BIGINT NOT NULL DEFAULT 0,
            cancelled BIGINT NOT NULL DEFAULT 0,
            prompt_tokens BIGINT NOT NULL DEFAULT 0,
            completion_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            unpriced BIGINT NOT NULL DEFAULT 0,
            latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            PRIMARY KEY (day, user_id, group_name, model_id)
        );
        CREATE INDEX usage_daily_by_user ON usage_daily (user_id, group_name, day);
        CREATE INDEX usage_daily_by_group ON usage_daily (group_name, day);
        -- Counters budgets and rate limits read before a turn: scope 'user:NAME' or 'group:NAME', period
        -- 'day:YYYY-MM-DD', 'month:YYYY-MM' or 'minute:N' (minutes since the epoch), pruned once expired.
        CREATE TABLE usage_counters (
            scope TEXT NOT NULL,
            period TEXT NOT NULL,
            requests BIGINT NOT NULL DEFAULT 0,
            tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            expires_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (scope, period)
        );
        CREATE INDEX usage_counters_by_expiry ON usage_counters (expires_at);
        -- A user's own budgets and rate limits (governance.settings.Limits as JSON), NULL for none.
        ALTER TABLE users ADD COLUMN limits_json TEXT
        """,
    ),
]


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer genai-chatbot: this version must not write to it."""

    def __init__(self, unknown: list[str]) -> None:
        super().__init__(
            f"The PostgreSQL database has schema migrations this version of genai-chatbot does not know "
            f"({', '.join(unknown)}): a newer version upgraded it. Run that version (or newer), or point "
            "database_url at another database."
        )


async def _recorded(db: AsyncConnection[DictRow]) -> list[str]:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    rows = await (await db.execute("SELECT name FROM _migrations ORDER BY applied_at, name")).fetchall()
    return [row["name"] for row in rows]


async def migrate(db: AsyncConnection[DictRow]) -> list[str]:
    """Apply every migration this database lacks, in order; the names applied (empty when up to date).

    Raises `SchemaTooNewError` (and applies nothing) when the database knows migrations this code does not.
    `db` must be in autocommit mode: each migration is its own transaction.
    """
    known = {name for name, _ in MIGRATIONS}
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        recorded = await _recorded(db)
    unknown = [name for name in recorded if name not in known]
    if unknown:
        raise SchemaTooNewError(unknown)
    applied: list[str] = []
    for name, script in MIGRATIONS:
        async with db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            # Checked under the lock: a replica that started at the same time may have applied it meanwhile.
            if await (await db.execute("SELECT 1 FROM _migrations WHERE name = %s", (name,))).fetchone():
                continue
            for statement in script.split(";"):
                if statement.strip():
                    await db.execute(statement)
            await db.execute("INSERT INTO _migrations (name) VALUES (%s)", (name,))
            applied.append(name)
    return applied


async def pending(db: AsyncConnection[DictRow]) -> list[str]:
    """The migrations this database lacks, without applying any; `SchemaTooNewError` as for `migrate`."""
    async with db.transaction():
        recorded = await _recorded(db)
    unknown = [name for name in recorded if name not in {name for name, _ in MIGRATIONS}]
    if unknown:
        raise SchemaTooNewError(unknown)
    return [name for name, _ in MIGRATIONS if name not in recorded]
