"""Which operation of a REST service (Lambda) a request names: its HTTP method and URI
template (``/2015-03-31/functions/{FunctionName}/invocations``), from botocore's model.
Known from the method and path alone, before the body is read (request limits use it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from botocore.model import OperationModel, ServiceModel

_LABEL = re.compile(r"\{([^}+]+)(\+?)\}")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    literal_query: tuple[str, ...]  # keys the URI template's "?..." requires
    operation: str
    specificity: tuple[int, int]


_ROUTES: dict[tuple[str, str], Route] = {}


def route(operation: OperationModel) -> Route:
    key = (operation.service_model.service_name, operation.name)
    found = _ROUTES.get(key)
    if found is None:
        found = _ROUTES[key] = _plan_route(operation)
    return found


def _plan_route(operation: OperationModel) -> Route:
    uri = str(operation.http.get("requestUri", "/"))
    path, _, query = uri.partition("?")
    pattern = ""
    at = 0
    literal = 0
    for match in _LABEL.finditer(path):
        pattern += re.escape(path[at : match.start()])
        literal += match.start() - at
        name = match.group(1)
        pattern += (
            f"(?P<{group_name(name)}>.+)" if match.group(2) else f"(?P<{group_name(name)}>[^/]+)"
        )
        at = match.end()
    pattern += re.escape(path[at:].rstrip("/")) + "/?"
    literal += len(path) - at
    keys = tuple(part.partition("=")[0] for part in query.split("&") if part)
    return Route(
        str(operation.http.get("method", "POST")),
        re.compile(pattern),
        keys,
        operation.name,
        (literal + len(keys), -pattern.count("(?P<")),
    )


def group_name(name: str) -> str:
    return re.sub(r"\W", "_", name)


class RestRoutes:
    """Which operation of a REST service a method and path name."""

    def __init__(self, model: ServiceModel) -> None:
        routes = [route(model.operation_model(name)) for name in model.operation_names]
        # The most literal template first: /functions/{F}/configuration before /functions/{F}.
        self._routes = sorted(routes, key=lambda found: found.specificity, reverse=True)
        self.prefixes = frozenset(
            "/" + str(model.operation_model(name).http["requestUri"]).lstrip("/").split("/")[0]
            for name in model.operation_names
        )

    def match(self, method: str, path: str, query: str) -> str | None:
        keys = {key for key, _ in parse_qsl(query, keep_blank_values=True)}
        for candidate in self._routes:
            if candidate.method != method or not candidate.pattern.fullmatch(path):
                continue
            if all(key in keys for key in candidate.literal_query):
                return candidate.operation
        return None

    def serves_path(self, path: str) -> bool:
        return "/" + path.lstrip("/").split("/")[0] in self.prefixes
