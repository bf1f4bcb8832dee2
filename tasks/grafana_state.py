"""The state of Grafana organisations, read live or from a backup, in one normalized form.

`live_state(client, orgs=...)` reads organisations through the API; `backup_state(path)`
reads a backup directory (format 1 or 2). Both give, per organisation, an `OrgState`:

    kind -> stable key (uid, or the name where Grafana keys by name) -> normalized object

"Normalized" is what a restore reproduces: no ids, versions, created/updated stamps or
provenance; references by uid or name (folders by uid, teams by name, users by login,
never numeric ids). A restore followed by `live_state` equals `backup_state` for the
same organisation: the round-trip tests check exactly that, `opskit diff grafana` shows
where they differ, and the restore plans its writes from the difference.

Reading also gives the *stored* form of every object (`fetch_org`): what a backup file
holds (the normalized object plus what a restore needs to write it back, e.g. the
members' e-mail addresses, the names of a data source's secret fields). `normalize(kind,
stored)` turns one into the other, and is idempotent.

A kind the credentials may not read (403), or this Grafana does not have (404), is left
out of the `OrgState` (absent, not empty) and reported in the problems list as
`{"status": "skipped", "org", "kind", "key": "", "name": "", "reason", "unavailable"}`
(unavailable: a 404, the kind does not exist in this Grafana, rather than a 403); one object that
cannot be read (a 5xx, a timeout) is `{"status": "missing", ...}` with its key and name.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from opskit.clients.grafana import Forbidden, GrafanaClient
from opskit.errors import AuthFailed, BackendTimeout, BadResponse, NotFound

Kind = str
OrgState = dict[Kind, dict[str, dict[str, Any]]]
Problem = dict[str, Any]  # {status: skipped|missing, org, kind, key, name, reason}

KINDS: tuple[Kind, ...] = (
    "folders",
    "dashboards",
    "library_panels",
    "datasources",
    "alert_rules",
    "contact_points",
    "policies",
    "mute_timings",
    "templates",
    "teams",
    "annotations",
    "preferences",
)
FORMAT_1 = "opskit-grafana-backup/1"
FORMAT_2 = "opskit-grafana-backup/2"
CONCURRENCY = 16  # requests in flight per operation (the pool has 16 keep-alive)
REDACTED = "[REDACTED]"
WRITTEN = "__written__"  # a stub: the object went to the backup's file already
VOLATILE = frozenset(
    {"id", "orgId", "orgID", "version", "created", "updated", "provenance", "guid"}
)
DS_FIELDS = (
    "uid", "name", "type", "access", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "jsonData",
)  # fmt: skip
PREF_FIELDS = ("theme", "timezone", "weekStart", "homeDashboardUID", "language")
# what makes one object missing rather than stopping: Grafana answered for it with an error
# (after the client's retries) or something unreadable, or not in time
OBJECT_ERRORS = (BadResponse, BackendTimeout)
T = TypeVar("T")


# ------------------------------------------------------------------ helpers


async def bounded(
    items: Iterable[T], fn: Callable[[T], Awaitable[Any]], limit: int = CONCURRENCY
) -> list[Any]:
    """`fn` over every item, at most `limit` at a time; the first error cancels the rest."""
    sem = asyncio.Semaphore(limit)

    async def one(item: T) -> Any:
        async with sem:
            return await fn(item)

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(item)) for item in items]
    except BaseExceptionGroup as group:
        raise _first(group) from None
    return [t.result() for t in tasks]


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def missing_entry(kind: str, uid: str, name: str, error: BaseException | str) -> dict[str, str]:
    """One object a backup lacks: its kind, uid, name and the error Grafana gave for it."""
    return {"kind": kind, "uid": uid, "name": name, "error": str(error)[:300]}


def strip(obj: dict[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
    drop = VOLATILE | set(extra)
    return {k: v for k, v in obj.items() if k not in drop}


def contact_point_keys(points: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Contact points by name (what policies and rules refer to; each organisation's
    default one has a random uid): `name`, or `name#N` for a name's further integrations."""
    out: dict[str, dict[str, Any]] = {}
    ordered = sorted(
        points, key=lambda c: (str(c.get("name")), str(c.get("type")), str(c.get("uid")))
    )
    for c in ordered:
        key, n = str(c.get("name", "")), 1
        while key in out:
            n += 1
            key = f"{c.get('name', '')}#{n}"
        out[key] = c
    return out


def annotation_key(a: dict[str, Any]) -> str:
    """Annotations have no uid: they are keyed by what they say and where."""
    text = json.dumps(normalize("annotations", a), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------ normalization


def _permission_entries(items: Any, with_email: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in items or []:
        if p.get("inherited"):
            continue
        level = int(p.get("permission") or 0)
        if p.get("role"):
            out.append({"role": str(p["role"]), "permission": level})
        elif p.get("team") or p.get("teamId"):
            out.append({"team": str(p.get("team") or ""), "permission": level})
        elif p.get("userLogin") or p.get("user") or p.get("userId"):
            entry: dict[str, Any] = {"user": str(p.get("userLogin") or p.get("user") or "")}
            if with_email:
                entry["email"] = str(p.get("userEmail") or p.get("email") or "")
            out.append({**entry, "permission": level})
    return sorted(out, key=lambda e: json.dumps(e, sort_keys=True))


def normalize_permissions(items: Any) -> list[dict[str, Any]]:
    """A permission list (stored or as Grafana answers it) as {role|team|user, permission},
    sorted; inherited entries (a dashboard's from its folder) are left out."""
    return _permission_entries(items, with_email=False)


def stored_permissions(items: Any) -> list[dict[str, Any]]:
    """What a backup keeps of a permission list: the normalized entries, users with their
    e-mail too (a restore matches them by login, else by e-mail)."""
    return _permission_entries(items, with_email=True)


def _secure_names(ds: dict[str, Any]) -> list[str]:
    fields = ds.get("secureJsonFields") or {}
    if isinstance(fields, dict):
        return sorted(k for k, v in fields.items() if v)
    return sorted(str(k) for k in fields)


def _library_model(model: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(model or {}).items() if k not in ("id", "libraryPanel")}


def normalize(kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
    """The normalized form of one object, from its stored form or Grafana's answer."""
    if kind == "folders":
        out = {
            "uid": obj["uid"],
            "title": obj.get("title", ""),
            "parentUid": obj.get("parentUid") or "",
        }
        if "permissions" in obj:
            out["permissions"] = normalize_permissions(obj["permissions"])
        return out
    if kind == "dashboards":
        model = dict(obj.get("dashboard") or obj.get("model") or {})
        out = {
            "uid": obj.get("uid") or model.get("uid"),
            "folderUid": obj.get("folderUid") or "",
            "model": {k: v for k, v in model.items() if k not in ("id", "version")},
        }
        if "permissions" in obj:
            out["permissions"] = normalize_permissions(obj["permissions"])
        return out
    if kind == "library_panels":
        folder = obj.get("folderUid") or (obj.get("meta") or {}).get("folderUid") or ""
        return {
            "uid": obj["uid"],
            "name": obj.get("name", ""),
            "folderUid": folder,
            "kind": int(obj.get("kind") or 1),
            "model": _library_model(obj.get("model")),
        }
    if kind == "datasources":
        out = {k: obj[k] for k in DS_FIELDS if k in obj}
        out["secureJsonFields"] = _secure_names(obj)
        return out
    if kind == "alert_rules":
        return strip(obj, ("updated_by",))
    if kind == "contact_points":
        return strip(obj, ("uid",))
    if kind == "policies":
        return strip(obj)
    if kind == "mute_timings":
        return strip(obj)
    if kind == "templates":
        return {"name": obj.get("name", ""), "template": obj.get("template", "")}
    if kind == "teams":
        members = obj.get("members") or []
        return {
            "name": obj.get("name", ""),
            "email": obj.get("email") or "",
            "members": sorted(str(m.get("login") if isinstance(m, dict) else m) for m in members),
        }
    if kind == "annotations":
        return {
            "dashboardUID": obj.get("dashboardUID") or "",
            "panelId": int(obj.get("panelId") or 0),
            "time": int(obj.get("time") or 0),
            "timeEnd": int(obj.get("timeEnd") or obj.get("time") or 0),
            "text": obj.get("text") or "",
            "tags": sorted(obj.get("tags") or []),
        }
    if kind == "preferences":
        return {k: obj.get(k) for k in PREF_FIELDS if obj.get(k) not in (None, "")}
    raise ValueError(f"unknown kind {kind!r}")


def normalize_dump(dump: dict[Kind, dict[str, dict[str, Any]]]) -> OrgState:
    return {
        kind: {key: normalize(kind, obj) for key, obj in objects.items()}
        for kind, objects in dump.items()
    }


# ------------------------------------------------------------------ reading live


@dataclass
class OrgDump:
    """One organisation as read: per kind, key -> stored form (insertion order is the
    order a restore writes: folders parents first)."""

    id: int
    name: str
    kinds: dict[Kind, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # the organisation's members [{login, email, role}] (None: not read); not a kind: a
    # restore adds existing users back to the organisation, it never creates users
    users: list[dict[str, str]] | None = None


async def folder_tree(
    client: GrafanaClient, missing: list[dict[str, str]] | None = None
) -> list[dict[str, Any]]:
    """Every folder as {uid, title, parentUid}, level by level (parents first); parentUid
    is the folder it was listed under, None at the top. A folder whose subfolders cannot be
    listed goes into `missing` (when given; else it raises)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    level: list[str | None] = [None]
    titles: dict[str | None, str] = {None: "(top level)"}

    async def children_of(parent: str | None) -> list[Any]:
        try:
            return await client.folders(parent)
        except OBJECT_ERRORS as exc:
            if missing is None:
                raise
            missing.append(
                missing_entry(
                    "folder", parent or "", titles.get(parent, ""), f"subfolders not listed: {exc}"
                )
            )
            return []

    while level:
        children = await bounded(level, children_of)
        parents, level = level, []
        for parent, items in zip(parents, children, strict=True):
            for item in items:
                if item.uid in seen:
                    continue
                seen.add(item.uid)
                titles[item.uid] = item.title
                out.append({"uid": item.uid, "title": item.title, "parentUid": parent})
                level.append(item.uid)
    return out


Progress = Callable[[str, int, int], None]  # (phase, done, total)


class Reader:
    """Reads one organisation, kind by kind; problems are collected, not raised."""

    def __init__(
        self, client: GrafanaClient, org_id: int, concurrency: int, progress: Progress | None
    ) -> None:
        self.client = client
        self.org = org_id
        self.concurrency = concurrency
        self.problems: list[Problem] = []
        self.report = progress or (lambda phase, done, total: None)
        # a backup writes each dashboard as it arrives (and keeps only a stub in memory)
        self.sink: Callable[[Kind, str, dict[str, Any]], None] | None = None

    def skip(self, kind: Kind, exc: BaseException) -> None:
        if isinstance(exc, NotFound):
            reason = f"not available in this Grafana ({exc.reason})"
        else:
            reason = getattr(exc, "reason", str(exc))
        self.problems.append(
            {"status": "skipped", "org": self.org, "kind": kind, "key": "", "name": "",
             "reason": str(reason)[:300], "unavailable": isinstance(exc, NotFound)}
        )  # fmt: skip

    def miss(self, kind: Kind, key: str, name: str, exc: BaseException | str) -> None:
        self.problems.append(
            {"status": "missing", "org": self.org, "kind": kind, "key": key, "name": name,
             "reason": str(exc)[:300]}
        )  # fmt: skip

    async def one(
        self, kind: Kind, key: str, name: str, fn: Callable[[], Awaitable[T]]
    ) -> T | None:
        """One object's read: None when it vanished (404) or failed (recorded missing)."""
        try:
            return await fn()
        except NotFound:
            return None
        except Forbidden as exc:
            self.miss(kind, key, name, exc)
            return None
        except OBJECT_ERRORS as exc:
            self.miss(kind, key, name, exc)
            return None

    async def folders(self) -> dict[str, dict[str, Any]]:
        missing: list[dict[str, str]] = []
        tree = await folder_tree(self.client, missing)
        for m in missing:
            self.miss("folders", m["uid"], m["name"], m["error"])

        async def perms(f: dict[str, Any]) -> None:
            got = await self.one(
                "folders", f["uid"], f["title"],
                lambda: self.client.folder_permissions(f["uid"]),
            )  # fmt: skip
            if got is not None:
                f["permissions"] = stored_permissions(got)

        await bounded(tree, perms, self.concurrency)
        return {f["uid"]: f for f in tree}

    async def dashboards(
        self,
        page_size: int,
        only: Iterable[str] | None = None,
        among: Iterable[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Every dashboard (or the uids `only`, without a search). `among`: of those the
        search lists, only these uids are read (a restore's plan reads only the dashboards
        of the backup that exist in the target: the search says which do)."""
        hits = [] if only is not None else await self.client.search_all("dash-db", page_size)
        uids = list(only) if only is not None else list(dict.fromkeys(hit.uid for hit in hits))
        if among is not None:
            chosen = set(among)
            uids = [u for u in uids if u in chosen]
        folder_of = {h.uid: h.folder_uid for h in hits}
        title_of = {h.uid: h.title for h in hits}
        out: dict[str, dict[str, Any]] = {}
        done = 0
        self.report("dashboards", 0, len(uids))

        async def fetch(uid: str) -> None:
            nonlocal done
            title = title_of.get(uid, "")
            # the model and its permissions at once: one round trip per dashboard, not two;
            # a dashboard that fails is missing once (its model's error), not twice
            got, perms = await asyncio.gather(
                self.client.dashboard(uid),
                self.client.dashboard_permissions(uid),
                return_exceptions=True,
            )
            for answer in (got, perms):
                if isinstance(answer, BaseException) and not isinstance(
                    answer, (NotFound, Forbidden, *OBJECT_ERRORS)
                ):
                    raise answer  # 401, cancelled: not this one object's problem
            if isinstance(got, NotFound):
                return  # vanished since the search
            if isinstance(got, BaseException):
                self.miss("dashboards", uid, title, got)
                return
            if isinstance(perms, BaseException):
                if not isinstance(perms, NotFound):
                    self.miss("dashboards", uid, got.title, perms)
                perms = None
            item: dict[str, Any] = {
                "uid": uid,
                "folderUid": got.folder_uid or folder_of.get(uid, ""),
                "dashboard": got.model,
                "meta": {k: got.meta.get(k) for k in ("version", "updated", "folderTitle")},
            }
            if perms is not None:
                item["permissions"] = stored_permissions(perms)
            if self.sink is not None:
                self.sink("dashboards", uid, item)
                item = {"uid": uid, WRITTEN: True}
            out[uid] = item
            done += 1
            self.report("dashboards", done, len(uids))

        # two requests per slot: at most `concurrency` in flight, as for the other kinds
        await bounded(uids, fetch, max(1, self.concurrency // 2))
        return {uid: out[uid] for uid in uids if uid in out}

    async def library_panels(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for e in await self.client.library_panels():
            meta = e.get("meta") or {}
            out[str(e["uid"])] = {
                "uid": str(e["uid"]),
                "name": e.get("name", ""),
                "folderUid": e.get("folderUid") or meta.get("folderUid") or "",
                "kind": int(e.get("kind") or 1),
                "model": _library_model(e.get("model")),
                "version": e.get("version"),
                "meta": {k: meta.get(k) for k in ("folderName", "connectedDashboards")},
            }
        return out

    async def datasources(self) -> dict[str, dict[str, Any]]:
        listed = await self.client.datasources()
        got = await bounded(
            [ds for ds in listed if ds.uid],
            lambda ds: self.one(
                "datasources", ds.uid, ds.name, lambda: self.client.datasource(ds.uid)
            ),
            self.concurrency,
        )
        out: dict[str, dict[str, Any]] = {}
        for ds in got:
            if ds is not None:
                raw = dict(ds.raw)
                raw.pop("secureJsonData", None)  # never: Grafana does not send it anyway
                out[ds.uid] = raw
        return out

    async def alert_rules(self) -> dict[str, dict[str, Any]]:
        rules = await self.client.alert_rules()
        groups = list(
            dict.fromkeys((str(r.get("folderUID", "")), str(r.get("ruleGroup", ""))) for r in rules)
        )
        intervals: dict[tuple[str, str], Any] = {}

        async def group(key: tuple[str, str]) -> None:
            got = await self.one(
                "alert_rules", f"{key[0]}/{key[1]}", key[1],
                lambda: self.client.rule_group(*key),
            )  # fmt: skip
            if got is not None:
                intervals[key] = got.get("interval")

        await bounded(groups, group, self.concurrency)
        out: dict[str, dict[str, Any]] = {}
        for r in rules:
            key = (str(r.get("folderUID", "")), str(r.get("ruleGroup", "")))
            rule = dict(r)
            if key in intervals:
                rule["ruleGroupInterval"] = intervals[key]
            out[str(r["uid"])] = rule
        return out

    async def contact_points(self) -> dict[str, dict[str, Any]]:
        return contact_point_keys(await self.client.contact_points())

    async def policies(self) -> dict[str, dict[str, Any]]:
        return {"tree": await self.client.policies()}

    async def mute_timings(self) -> dict[str, dict[str, Any]]:
        return {str(m["name"]): m for m in await self.client.mute_timings()}

    async def templates(self) -> dict[str, dict[str, Any]]:
        return {str(t["name"]): t for t in await self.client.templates()}

    async def teams(self) -> dict[str, dict[str, Any]]:
        teams = await self.client.teams()
        out: dict[str, dict[str, Any]] = {}

        async def members(t: dict[str, Any]) -> None:
            got = await self.one(
                "teams", str(t["name"]), str(t["name"]),
                lambda: self.client.team_members(int(t["id"])),
            )  # fmt: skip
            item: dict[str, Any] = {"name": t["name"], "email": t.get("email") or ""}
            if got is not None:
                item["members"] = sorted(
                    ({"login": str(m.get("login") or ""), "email": str(m.get("email") or "")}
                     for m in got),
                    key=lambda m: m["login"],
                )  # fmt: skip
            out[str(t["name"])] = item

        await bounded(teams, members, self.concurrency)
        return {str(t["name"]): out[str(t["name"])] for t in teams if str(t["name"]) in out}

    async def annotations(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for a in await self.client.annotations():
            if a.get("alertId"):  # alert state history: Grafana writes it, not restorable
                continue
            item = {
                k: a.get(k) for k in ("dashboardUID", "panelId", "time", "timeEnd", "text", "tags")
            }
            out[annotation_key(item)] = item
        return out

    async def preferences(self) -> dict[str, dict[str, Any]]:
        return {"org": await self.client.preferences()}


async def fetch_org(
    client: GrafanaClient,
    org_id: int,
    org_name: str,
    *,
    kinds: Iterable[Kind] | None = None,
    with_annotations: bool = False,
    page_size: int = 1000,
    concurrency: int = CONCURRENCY,
    progress: Progress | None = None,
    sink: Callable[[Kind, str, dict[str, Any]], None] | None = None,
    dashboards_among: Iterable[str] | None = None,
) -> tuple[OrgDump, list[Problem]]:
    """Read one organisation (`client` signed in to it), in stored form. Listing
    dashboards (search) failing stops it (raises); any other kind that cannot be listed
    is skipped (403, 404) or missing (5xx), and the rest is read. `dashboards_among`:
    read only these of the dashboards the search lists (the others are left out)."""
    wanted = [k for k in (kinds or KINDS) if k in KINDS]
    if not with_annotations:
        wanted = [k for k in wanted if k != "annotations"]
    reader = Reader(client, org_id, concurrency, progress)
    reader.sink = sink
    dump = OrgDump(org_id, org_name)

    async def read(kind: Kind) -> None:
        fn: Callable[[], Awaitable[dict[str, dict[str, Any]]]] = getattr(reader, kind)
        if kind == "dashboards":
            fn = partial(reader.dashboards, page_size, among=dashboards_among)
        try:
            dump.kinds[kind] = await fn()
        except Forbidden as exc:
            reader.skip(kind, exc)
        except NotFound as exc:
            reader.skip(kind, exc)
        except OBJECT_ERRORS as exc:
            if kind in ("dashboards", "datasources"):
                raise  # the list of everything failed: nothing to back up
            reader.miss(kind, "", "(all)", f"could not be listed: {exc}")

    async def members() -> None:
        try:
            users = await client.org_users()
        except (Forbidden, NotFound, *OBJECT_ERRORS):
            return
        dump.users = sorted(
            ({"login": str(u.get("login") or ""), "email": str(u.get("email") or ""),
              "role": str(u.get("role") or "Viewer")} for u in users),
            key=lambda u: u["login"],
        )  # fmt: skip

    results = await asyncio.gather(members(), *(read(k) for k in wanted), return_exceptions=True)
    for r in results:
        if isinstance(r, AuthFailed) and not isinstance(r, Forbidden):
            raise r  # 401: nothing works
    for r in results:
        if isinstance(r, BaseException):
            raise r
    dump.kinds = {k: dump.kinds[k] for k in KINDS if k in dump.kinds}
    return dump, reader.problems


async def list_orgs(client: GrafanaClient, orgs: list[int] | None) -> list[tuple[int, str]]:
    """(id, name) of the organisations to read: `orgs`, or the credentials' own when None.
    Naming other organisations needs a server admin (`/api/orgs`)."""
    if orgs is None:
        own = await client.org()
        return [(own.id, own.name)]
    names = {o.id: o.name for o in await client.orgs()}
    return [(i, names.get(i, "")) for i in orgs]


async def live_state(
    client: GrafanaClient,
    *,
    orgs: list[int] | None,
    with_annotations: bool = False,
    kinds: Iterable[Kind] | None = None,
) -> tuple[dict[int, OrgState], list[Problem]]:
    """The normalized state of `orgs` (None: the credentials' own organisation), and what
    could not be read (skipped kinds, missing objects)."""
    out: dict[int, OrgState] = {}
    problems: list[Problem] = []
    for org_id, name in await list_orgs(client, orgs):
        scoped = client if orgs is None else client.for_org(org_id)
        dump, found = await fetch_org(
            scoped, org_id, name, kinds=kinds, with_annotations=with_annotations
        )
        out[org_id] = normalize_dump(dump.kinds)
        problems += found
    return out, problems


# ------------------------------------------------------------------ reading a backup


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def read_org_dir(directory: Path) -> OrgDump:
    """One organisation of a format-2 backup (`orgs/<id>/`), in stored form. Kinds that
    were not backed up (skipped: org.json's `kinds` lacks them) stay absent."""
    org = _read_json(directory / "org.json")
    dump = OrgDump(int(org["id"]), str(org.get("name", "")))
    kinds: dict[Kind, dict[str, dict[str, Any]]] = {}
    if (directory / "folders.json").exists():
        kinds["folders"] = {f["uid"]: f for f in _read_json(directory / "folders.json")}
    for kind in ("dashboards", "library_panels"):
        if kind in org.get("kinds", ()):
            items = [_read_json(p) for p in sorted((directory / kind).glob("*.json"))]
            kinds[kind] = {
                str(i["uid"]): {k: v for k, v in i.items() if k != "order"} for i in items
            }
    if (directory / "datasources.json").exists():
        kinds["datasources"] = {
            str(d.get("uid") or d.get("name")): d
            for d in _read_json(directory / "datasources.json")
        }
    alerting = directory / "alerting"
    if (alerting / "alert_rules.json").exists():
        kinds["alert_rules"] = {str(r["uid"]): r for r in _read_json(alerting / "alert_rules.json")}
    if (alerting / "contact_points.json").exists():
        kinds["contact_points"] = contact_point_keys(_read_json(alerting / "contact_points.json"))
    if (alerting / "policies.json").exists():
        kinds["policies"] = {"tree": _read_json(alerting / "policies.json")}
    if (alerting / "mute_timings.json").exists():
        kinds["mute_timings"] = {
            str(m["name"]): m for m in _read_json(alerting / "mute_timings.json")
        }
    if (alerting / "templates.json").exists():
        kinds["templates"] = {str(t["name"]): t for t in _read_json(alerting / "templates.json")}
    if (directory / "teams.json").exists():
        kinds["teams"] = {str(t["name"]): t for t in _read_json(directory / "teams.json")}
    if (directory / "annotations.json").exists():
        kinds["annotations"] = {
            annotation_key(a): a for a in _read_json(directory / "annotations.json")
        }
    if "preferences" in org:
        kinds["preferences"] = {"org": org["preferences"]}
    dump.users = org.get("users")
    dump.kinds = {k: kinds[k] for k in KINDS if k in kinds}
    return dump


def read_format_1(path: Path, manifest: dict[str, Any]) -> OrgDump:
    """A format-1 backup (one organisation, flat): folders, dashboards, data sources."""
    org = (manifest.get("grafana") or {}).get("org") or {}
    dump = OrgDump(int(org.get("id") or 1), str(org.get("name") or ""))
    dump.kinds["folders"] = {f["uid"]: f for f in _read_json(path / "folders.json")}
    files = sorted(manifest.get("files") or [])
    dashboards = [_read_json(path / f) for f in files if f.startswith("dashboards/")]
    dump.kinds["dashboards"] = {str(d["uid"]): d for d in dashboards}
    dump.kinds["datasources"] = {
        str(d.get("uid") or d.get("name")): d for d in _read_json(path / "datasources.json")
    }
    return dump


def backup_dumps(path: Path, manifest: dict[str, Any] | None = None) -> dict[int, OrgDump]:
    """Every organisation of a backup directory, in stored form (no checksum check: that
    is `grafana_restore.load_backup`'s first step)."""
    if manifest is None:
        manifest = _read_json(path / "manifest.json")
    if manifest.get("format") == FORMAT_1:
        dump = read_format_1(path, manifest)
        return {dump.id: dump}
    out: dict[int, OrgDump] = {}
    for entry in manifest.get("orgs") or []:
        d = read_org_dir(path / "orgs" / str(entry["id"]))
        out[d.id] = d
    return out


def backup_state(path: Path) -> dict[int, OrgState]:
    """The normalized state a backup directory holds (format 1 and 2), per organisation."""
    return {org_id: normalize_dump(d.kinds) for org_id, d in backup_dumps(path).items()}
