"""core schema: entities, event log, outbox, rules, rollups, snapshots, archive

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28 18:31:36.652574
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_table('automation_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('trigger', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('action', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('builtin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_rules')),
    sa.UniqueConstraint('name', name=op.f('uq_automation_rules_name'))
    )
    op.create_table('orchestration_archive_manifests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('first_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('stream_heads', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orchestration_archive_manifests')),
    sa.UniqueConstraint('path', name=op.f('uq_orchestration_archive_manifests_path'))
    )
    op.create_table('orchestration_event_rollups',
    sa.Column('bucket_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('type', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('archived', sa.Boolean(), nullable=False),
    sa.Column('count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('bucket_start', 'type', 'actor', 'entity_type', 'archived', name=op.f('pk_orchestration_event_rollups'))
    )
    op.create_table('orchestration_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=200), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('entity_code', sa.String(length=128), nullable=True),
    sa.Column('sequence', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('emitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('correlation_id', sa.String(length=36), nullable=False),
    sa.Column('correlation_chain', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('causation_id', sa.String(length=36), nullable=True),
    sa.Column('causation_depth', sa.Integer(), nullable=False),
    sa.Column('session_key', sa.String(length=128), nullable=True),
    sa.Column('priority', sa.String(length=2), nullable=False),
    sa.Column('changes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orchestration_events')),
    sa.UniqueConstraint('entity_type', 'entity_id', 'sequence', name='uq_events_stream_sequence'),
    sa.UniqueConstraint('event_id', name=op.f('uq_orchestration_events_event_id')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('orchestration_events', schema=None) as batch_op:
        batch_op.create_index('ix_events_archived_at_id', ['archived_at', 'id'], unique=False)
        batch_op.create_index('ix_events_correlation_chain', ['correlation_chain'], unique=False, postgresql_using='gin', postgresql_ops={'correlation_chain': 'jsonb_path_ops'})
        batch_op.create_index('ix_events_entity_code', ['entity_type', 'entity_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_orchestration_events_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_orchestration_events_causation_id'), ['causation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orchestration_events_correlation_id'), ['correlation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orchestration_events_emitted_at'), ['emitted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_orchestration_events_type'), ['type'], unique=False)

    op.create_table('orchestration_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('state', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.Column('last_event_id', sa.String(length=36), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orchestration_snapshots')),
    sa.UniqueConstraint('entity_type', 'entity_id', 'sequence', name='uq_snapshots_stream_sequence')
    )
    op.create_table('signals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('correlation_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signals')),
    sa.UniqueConstraint('correlation_id', name=op.f('uq_signals_correlation_id'))
    )
    op.create_table('sprints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sprint_code', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=2), nullable=False),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('correlation_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sprints')),
    sa.UniqueConstraint('correlation_id', name=op.f('uq_sprints_correlation_id')),
    sa.UniqueConstraint('sprint_code', name=op.f('uq_sprints_sprint_code'))
    )
    with op.batch_alter_table('sprints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sprints_status'), ['status'], unique=False)

    op.create_table('automation_rule_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('effects', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['rule_id'], ['automation_rules.id'], name=op.f('fk_automation_rule_runs_rule_id_automation_rules'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_rule_runs')),
    sa.UniqueConstraint('rule_id', 'event_id', name='uq_rule_runs_rule_event')
    )
    with op.batch_alter_table('automation_rule_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_automation_rule_runs_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_automation_rule_runs_status'), ['status'], unique=False)

    op.create_table('orchestration_outbox',
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dispatch_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['orchestration_events.id'], name=op.f('fk_orchestration_outbox_event_id_orchestration_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_orchestration_outbox'))
    )
    with op.batch_alter_table('orchestration_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orchestration_outbox_dispatched_at'), ['dispatched_at'], unique=False)

    op.create_table('tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_code', sa.String(length=64), nullable=False),
    sa.Column('sprint_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=2), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('assignee', sa.String(length=200), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('correlation_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sprint_id'], ['sprints.id'], name=op.f('fk_tasks_sprint_id_sprints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
    sa.UniqueConstraint('correlation_id', name=op.f('uq_tasks_correlation_id')),
    sa.UniqueConstraint('task_code', name=op.f('uq_tasks_task_code'))
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tasks_assignee'), ['assignee'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_sprint_id'), ['sprint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_status'), ['status'], unique=False)

    op.create_table('agent_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_key', sa.String(length=128), nullable=False),
    sa.Column('agent_id', sa.String(length=200), nullable=False),
    sa.Column('sprint_id', sa.Integer(), nullable=True),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('correlation_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sprint_id'], ['sprints.id'], name=op.f('fk_agent_sessions_sprint_id_sprints')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_agent_sessions_task_id_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_sessions')),
    sa.UniqueConstraint('correlation_id', name=op.f('uq_agent_sessions_correlation_id')),
    sa.UniqueConstraint('session_key', name=op.f('uq_agent_sessions_session_key'))
    )
    with op.batch_alter_table('agent_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_sessions_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agent_sessions_sprint_id'), ['sprint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agent_sessions_task_id'), ['task_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('agent_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_sessions_task_id'))
        batch_op.drop_index(batch_op.f('ix_agent_sessions_sprint_id'))
        batch_op.drop_index(batch_op.f('ix_agent_sessions_agent_id'))

    op.drop_table('agent_sessions')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tasks_status'))
        batch_op.drop_index(batch_op.f('ix_tasks_sprint_id'))
        batch_op.drop_index(batch_op.f('ix_tasks_assignee'))

    op.drop_table('tasks')
    with op.batch_alter_table('orchestration_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orchestration_outbox_dispatched_at'))

    op.drop_table('orchestration_outbox')
    with op.batch_alter_table('automation_rule_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_automation_rule_runs_status'))
        batch_op.drop_index(batch_op.f('ix_automation_rule_runs_event_id'))

    op.drop_table('automation_rule_runs')
    with op.batch_alter_table('sprints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sprints_status'))

    op.drop_table('sprints')
    op.drop_table('signals')
    op.drop_table('orchestration_snapshots')
    with op.batch_alter_table('orchestration_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orchestration_events_type'))
        batch_op.drop_index(batch_op.f('ix_orchestration_events_emitted_at'))
        batch_op.drop_index(batch_op.f('ix_orchestration_events_correlation_id'))
        batch_op.drop_index(batch_op.f('ix_orchestration_events_causation_id'))
        batch_op.drop_index(batch_op.f('ix_orchestration_events_actor'))
        batch_op.drop_index('ix_events_entity_code')
        batch_op.drop_index('ix_events_correlation_chain', postgresql_using='gin', postgresql_ops={'correlation_chain': 'jsonb_path_ops'})
        batch_op.drop_index('ix_events_archived_at_id')

    op.drop_table('orchestration_events')
    op.drop_table('orchestration_event_rollups')
    op.drop_table('orchestration_archive_manifests')
    op.drop_table('automation_rules')
    op.drop_table('api_tokens')

