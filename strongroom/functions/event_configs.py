"""Lambda's event invoke config operations: how a function's asynchronous invocations are
retried (``MaximumRetryAttempts``) and how old an event may grow (``MaximumEventAgeInSeconds``).

Served for ``$LATEST`` (functions have no versions or aliases here). Destinations
(``DestinationConfig.OnSuccess``/``OnFailure``) are not delivered: a config naming one is
refused with Lambda's ``InvalidParameterValueException`` for a destination it cannot use,
and nothing changes. The queue that applies the config is :mod:`strongroom.functions.event_queue`.
"""

from __future__ import annotations

from typing import Any

from strongroom.clock import from_ms, now_ms
from strongroom.functions import event_queue
from strongroom.functions.base import FunctionsBase, Output, Params
from strongroom.functions.common import invalid_parameter
from strongroom.functions.event_queue import ConfigRow
from strongroom.functions.repository import FunctionRecord
from strongroom.protocol.errors import ServiceError
from strongroom.types import Caller

_SETTINGS = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")


def _no_function() -> ServiceError:
    return ServiceError("ResourceNotFoundException", "The function doesn't exist.", 404)


def _no_config(arn: str) -> ServiceError:
    return ServiceError(
        "ResourceNotFoundException",
        f"The function {arn}:$LATEST doesn't have an EventInvokeConfig",
        404,
    )


def _check_settings(params: Params) -> None:
    if all(params.get(name) is None for name in _SETTINGS):
        raise invalid_parameter(
            "You must specify at least one of error handling or destination setting."
        )
    destinations = params.get("DestinationConfig") or {}
    success = (destinations.get("OnSuccess") or {}).get("Destination")
    failure = (destinations.get("OnFailure") or {}).get("Destination")
    if success or failure:
        on_success = f"OnSuccess(destination={success})" if success else "null"
        on_failure = f"OnFailure(destination={failure})" if failure else "null"
        raise invalid_parameter(
            f"The provided destination config DestinationConfig(onSuccess={on_success}, "
            f"onFailure={on_failure}) is invalid. (Strongroom delivers no asynchronous "
            "invocation records to destinations.)"
        )


class EventInvokeConfigs(FunctionsBase):
    def _configured(self, caller: Caller, params: Params) -> FunctionRecord:
        """The function a config operation names ($LATEST only); a built-in's is not ours
        to change."""
        if params.get("Qualifier") not in (None, "$LATEST"):
            raise _no_function()
        record = self.find(caller, params["FunctionName"])
        if record is None:
            raise _no_function()
        return record

    def _config_output(self, row: ConfigRow) -> Output:
        out: Output = {
            "LastModified": from_ms(row.modified_ms),
            "FunctionArn": row.function_arn + ":$LATEST",
            "DestinationConfig": {"OnSuccess": {}, "OnFailure": {}},
        }
        if row.maximum_retry_attempts is not None:
            out["MaximumRetryAttempts"] = row.maximum_retry_attempts
        if row.maximum_event_age_seconds is not None:
            out["MaximumEventAgeInSeconds"] = row.maximum_event_age_seconds
        return out

    def put_function_event_invoke_config(self, caller: Caller, params: Params) -> Output:
        """Set the config whole: a setting left out is Lambda's default again."""
        record = self._configured(caller, params)
        _check_settings(params)
        self._changeable(caller, params["FunctionName"])  # a built-in: AccessDeniedException
        row = ConfigRow(
            record.arn,
            params.get("MaximumRetryAttempts"),
            params.get("MaximumEventAgeInSeconds"),
            now_ms(self._clock),
        )
        with self._store.write() as conn:
            event_queue.put_config(conn, row)
        return self._config_output(row)

    def update_function_event_invoke_config(self, caller: Caller, params: Params) -> Output:
        """Change the settings given, keep the others."""
        record = self._configured(caller, params)
        _check_settings(params)
        with self._store.write() as conn:
            found = event_queue.config(conn, record.arn)
            if found is None:
                raise _no_config(record.arn)
            changes: dict[str, Any] = {"modified_ms": now_ms(self._clock)}
            if params.get("MaximumRetryAttempts") is not None:
                changes["maximum_retry_attempts"] = params["MaximumRetryAttempts"]
            if params.get("MaximumEventAgeInSeconds") is not None:
                changes["maximum_event_age_seconds"] = params["MaximumEventAgeInSeconds"]
            row = found._replace(**changes)
            event_queue.put_config(conn, row)
        return self._config_output(row)

    def get_function_event_invoke_config(self, caller: Caller, params: Params) -> Output:
        record = self._configured(caller, params)
        with self._store.read() as conn:
            found = event_queue.config(conn, record.arn)
        if found is None:
            raise _no_config(record.arn)
        return self._config_output(found)

    def delete_function_event_invoke_config(self, caller: Caller, params: Params) -> Output:
        record = self._configured(caller, params)
        with self._store.write() as conn:
            if not event_queue.delete_config(conn, record.arn):
                raise _no_config(record.arn)
        # FunctionArn names the audit record's resource; it is not written to the wire.
        return {"FunctionArn": record.arn}

    def list_function_event_invoke_configs(self, caller: Caller, params: Params) -> Output:
        """$LATEST's config, if it has one: a list of at most one, so never a NextMarker
        (and no Marker this server issued to continue from)."""
        if params.get("Marker"):
            raise invalid_parameter("The Marker is not valid.")
        record = self._configured(caller, params)
        with self._store.read() as conn:
            found = event_queue.config(conn, record.arn)
        return {"FunctionEventInvokeConfigs": [] if found is None else [self._config_output(found)]}
