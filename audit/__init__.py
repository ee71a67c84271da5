"""The append-only Merkle audit log: every access, in a tree anyone can check.

Modules (pure cores first):
- ``merkle``: RFC 9162 hashing, inclusion and consistency proofs and their verification;
- ``note`` / ``checkpoint``: C2SP signed notes, vkeys, tlog-checkpoints, cosignatures;
- ``entry``: the entry schema and its RFC 8785 canonical bytes (salted, never a value);
- ``witness``: what a department's witness remembers and refuses (rollback, fork);
- ``verify``: full verification of a stored log, naming the first bad index;
- ``store``: tables of migration 0002 and the locked sequencing transaction;
- ``service``: ``AuditLog``, the service the gateway composes.

Operating it:
- the gateway enqueues each entry in the request's own transaction and waits for its
  index (``AuditLog.await_index``); a background loop (``AuditLog.background_step``,
  every ``audit.checkpoint_interval_seconds``) integrates what is left and signs a
  checkpoint when the tree grew;
- ``xinyi audit verify [--checkpoint FILE]`` checks everything stored; exit 1 names the
  first bad index;
- a department runs ``xinyi audit witness-key --department ID`` once (prints the vkey),
  the operator registers it with ``xinyi audit add-witness ID VKEY``, then the department
  runs ``xinyi audit witness --gateway URL --department ID --state FILE`` periodically
  (e.g. from cron); exit 1 means the log forked, rolled back or was tampered with;
- on PostgreSQL, migration 0002 creates the NOLOGIN role ``xinyi_audit`` (INSERT and
  SELECT on the append-only tables only). Run the gateway as a login that has it and
  no other privilege on those tables: ``GRANT xinyi_audit TO gateway_login``. If the
  migrating user could not create roles, a superuser runs ``xinyi audit writer-role``
  (idempotent) later. The triggers refuse UPDATE and DELETE whoever the user is.
"""
