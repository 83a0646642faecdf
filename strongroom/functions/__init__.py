"""The Lambda-compatible function service: functions, their permissions, and the runtime
that runs each invocation in a separate, untrusted process."""
