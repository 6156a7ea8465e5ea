"""The API server, through lightkube (the ``k8s`` extra): the only module that touches the library.

Why lightkube: a maintained, typed client with an asynchronous list and watch, models for every
built-in resource, kubeconfig and in-cluster configuration, on httpx's successor and without
pydantic, aiohttp or urllib3 (the official ``kubernetes`` client is synchronous, brings urllib3 and
a thread per watch; ``kubernetes-asyncio`` brings aiohttp). The library is imported when the adapter
starts, not when this module is imported, so netmaster's wheel works without the extra and the
command can say in one line that it is missing.

Objects leave here as the dicts the API server sent (the library's models, ``to_dict()``), so the
rest of the adapter does not depend on the library.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netmaster.kubernetes.adapter.informer import Obj, ResourceGone, SourceError
from netmaster.kubernetes.adapter.translate import NAMESPACES, NETWORK_POLICIES, PODS, Resource

if TYPE_CHECKING:
    from lightkube import AsyncClient

EXTRA_HINT = "install the adapter's extra: pip install 'contiv[k8s]' (the lightkube client library)"


class SourceConfigError(Exception):
    """The client library is missing, or no usable API server configuration was found."""


def _models() -> dict[Resource, Any]:
    from lightkube.resources.core_v1 import Namespace, Pod
    from lightkube.resources.networking_v1 import NetworkPolicy

    return {NAMESPACES: Namespace, PODS: Pod, NETWORK_POLICIES: NetworkPolicy}


def as_dict(model: Any) -> dict[str, Any]:
    """A lightkube model as the API server's JSON (what the reconciler takes)."""
    return dict(model.to_dict())


def status_code(exc: BaseException) -> int | None:
    """The HTTP status of a lightkube ApiError (also of an ERROR event in a watch), else None."""
    from lightkube import ApiError

    if isinstance(exc, ApiError) and exc.status is not None:
        return exc.status.code
    return None


class LightkubeSource:
    """List and watch on an API server. *watch_seconds*: how long the API server keeps one watch
    request open (it ends it cleanly and the library re-opens it from the last version); a watch that
    stays silent past that plus *idle_margin* is taken for a dead connection (the library reads a
    watch without a timeout) and ends, so the informer opens a new one."""

    def __init__(self, client: AsyncClient, *, server: str = "", watch_seconds: int = 300,
                 idle_margin: float = 30.0) -> None:
        self.client = client
        self.server = server  # the API server's URL, for messages
        self.watch_seconds = watch_seconds
        self.idle_margin = idle_margin
        self._models = _models()

    @classmethod
    def open(cls, kubeconfig: Path | None = None, context: str | None = None, *,
             watch_seconds: int = 300) -> LightkubeSource:
        """From *kubeconfig* (and its *context*), else from the environment: the pod's service account
        in a cluster, then ``$KUBECONFIG``, then ``~/.kube/config``. Raises SourceConfigError."""
        try:
            from lightkube import AsyncClient, ConfigError, KubeConfig
        except ImportError as exc:
            raise SourceConfigError(f"{EXTRA_HINT} ({exc})") from None
        try:
            config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
            single = config.get(context_name=context)
            return cls(AsyncClient(single, trust_env=False), server=single.cluster.server,
                       watch_seconds=watch_seconds)
        except ConfigError as exc:
            where = f"kubeconfig {kubeconfig}" if kubeconfig else "no in-cluster service account and kubeconfig"
            raise SourceConfigError(f"{where}: {exc}") from None
        except Exception as exc:  # a file that is not YAML, a context naming a missing user, ...
            detail = " ".join(str(exc).split())  # a YAML error spans lines
            raise SourceConfigError(f"kubeconfig {kubeconfig or '(from the environment)'}: "
                                    f"{type(exc).__name__}: {detail}") from None

    async def close(self) -> None:
        await self.client.close()

    async def list(self, resource: Resource) -> tuple[list[Obj], str]:
        """Every object, in chunks of 500 (one consistent list: the chunks share its version)."""
        listing = self._list(resource, 500)
        with source_errors(resource, "list"):
            objects = [as_dict(o) async for o in listing]
        return objects, listing.resourceVersion

    async def check(self, resource: Resource) -> None:
        """One list request of one object: the API server answers and lets us list *resource*."""
        with source_errors(resource, "list"):
            async for _ in self._list(resource, 1):
                break

    def _list(self, resource: Resource, chunk_size: int) -> Any:
        return self.client.list(self._models[resource], chunk_size=chunk_size, **_everywhere(resource))

    async def watch(self, resource: Resource, resource_version: str) -> AsyncIterator[tuple[str, Obj]]:
        stream = self.client.watch(self._models[resource], resource_version=resource_version,
                                   server_timeout=self.watch_seconds, **_everywhere(resource))
        try:
            while True:
                with source_errors(resource, "watch"):
                    try:
                        async with asyncio.timeout(self.watch_seconds + self.idle_margin):
                            event_type, obj = await anext(stream)
                    except (StopAsyncIteration, TimeoutError):
                        return  # the informer watches again from its version
                yield event_type, as_dict(obj)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()


def _everywhere(resource: Resource) -> dict[str, str]:
    """Every namespace (the library's default is the kubeconfig's namespace)."""
    from lightkube import ALL_NS

    return {"namespace": ALL_NS} if resource.namespaced else {}


@contextlib.contextmanager
def source_errors(resource: Resource, verb: str) -> Any:
    """The library's and the transport's exceptions as the informer's ResourceGone and SourceError."""
    import httpx2

    try:
        yield
    except httpx2.HTTPError as exc:
        code = status_code(exc)
        if code == 410:
            raise ResourceGone(str(exc)) from None
        detail = f"{code} {exc}" if code else f"{type(exc).__name__}: {exc}"
        raise SourceError(f"{verb} {resource.plural}: {detail}") from None
