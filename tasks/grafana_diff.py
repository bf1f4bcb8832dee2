"""What changed between two states of Grafana (a backup and the live one): pure.

A state is `{org id: OrgState}`, an OrgState `{kind: {stable key: normalized object}}`
(tasks.grafana_state: uids or names as keys, no ids, versions or timestamps). `diff_states`
says, per org and per kind, which objects were added (only in `after`), removed (only in
`before`) and changed, and for a changed object the JSON paths of the fields that differ.
A dashboard's panels are matched by `id`, then by title (a panel whose id changed is the
same panel), rows' nested panels included, so a changed panel is named rather than
reported as a shifted list; paths inside it read `panels[id=3].targets[0].expr`.

Output is bounded: at most `max_fields` paths per object (the rest counted in
`more_fields`) and values cut to `VALUE_CHARS` characters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

OrgState = dict[str, dict[str, dict[str, Any]]]
MAX_FIELDS = 20
VALUE_CHARS = 120
# never differences: Grafana assigns these on every save (in case a state still has them)
VOLATILE = frozenset({"id", "version", "iteration", "created", "updated"})
DASHBOARD_KINDS = frozenset({"dashboards", "dashboard"})
_MISSING = object()


@dataclass
class FieldChange:
    path: str  # `title`, `panels[id=2].targets[0].expr`, `templating.list[1]`
    before: Any  # _shown(): None when absent
    after: Any
    change: str = "changed"  # changed | added (only after) | removed (only before)


@dataclass
class PanelChange:
    """One panel of a changed dashboard: `added`, `removed` or `changed` (`fields`:
    paths relative to the panel)."""

    id: Any
    title: str
    change: str
    fields: list[str] = field(default_factory=list)


@dataclass
class ObjectChange:
    key: str  # the uid (or name) the object is known by
    name: str  # its title or name, for people
    fields: list[FieldChange]  # at most max_fields
    more_fields: int = 0  # paths left out
    panels: list[PanelChange] = field(default_factory=list)  # dashboards only


@dataclass
class ObjectRef:
    key: str
    name: str


@dataclass
class KindDiff:
    added: list[ObjectRef] = field(default_factory=list)
    removed: list[ObjectRef] = field(default_factory=list)
    changed: list[ObjectChange] = field(default_factory=list)
    unchanged: int = 0

    @property
    def differs(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass
class OrgDiff:
    org_id: int
    kinds: dict[str, KindDiff]
    presence: str = "both"  # both | added (only live) | removed (only in the backup)

    @property
    def differs(self) -> bool:
        return self.presence != "both" or any(k.differs for k in self.kinds.values())


@dataclass
class GrafanaDiff:
    orgs: list[OrgDiff]

    @property
    def differs(self) -> bool:
        return any(o.differs for o in self.orgs)

    def counts(self) -> dict[str, int]:
        """Objects added, removed, changed over every org and kind."""
        out = {"added": 0, "removed": 0, "changed": 0, "unchanged": 0}
        for org in self.orgs:
            for kd in org.kinds.values():
                out["added"] += len(kd.added)
                out["removed"] += len(kd.removed)
                out["changed"] += len(kd.changed)
                out["unchanged"] += kd.unchanged
        return out


# ------------------------------------------------------------------ helpers


def _shown(value: Any) -> Any:
    """A value as the diff shows it: scalars as they are, the rest as compact JSON cut
    to VALUE_CHARS."""
    if value is _MISSING:
        return None
    if isinstance(value, str):
        return value if len(value) <= VALUE_CHARS else value[: VALUE_CHARS - 1] + "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _key_part(key: str) -> str:
    simple = key.replace("_", "").replace("-", "").isalnum() and not key[:1].isdigit()
    return f".{key}" if simple else f"[{json.dumps(key)}]"


def _join(prefix: str, key: str) -> str:
    part = _key_part(key)
    return part[1:] if not prefix and part.startswith(".") else prefix + part


def walk(
    before: Any, after: Any, prefix: str = "", ignore: frozenset[str] = frozenset()
) -> Iterator[FieldChange]:
    """Every leaf-level difference between two JSON values, in document order: dicts by
    key (sorted), lists by position (extra items as added/removed)."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            if key in ignore:
                continue
            b, a = before.get(key, _MISSING), after.get(key, _MISSING)
            path = _join(prefix, str(key))
            if b is _MISSING:
                yield FieldChange(path, None, _shown(a), "added")
            elif a is _MISSING:
                yield FieldChange(path, _shown(b), None, "removed")
            elif b != a:
                yield from walk(b, a, path)
        return
    if isinstance(before, list) and isinstance(after, list):
        for i in range(max(len(before), len(after))):
            path = f"{prefix}[{i}]"
            if i >= len(before):
                yield FieldChange(path, None, _shown(after[i]), "added")
            elif i >= len(after):
                yield FieldChange(path, _shown(before[i]), None, "removed")
            elif before[i] != after[i]:
                yield from walk(before[i], after[i], path)
        return
    if before != after:
        yield FieldChange(prefix or "(value)", _shown(before), _shown(after))


def _panels(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel of a dashboard model, rows' collapsed panels included (flattened)."""
    out: list[dict[str, Any]] = []
    for panel in model.get("panels") or []:
        if not isinstance(panel, dict):
            continue
        out.append({k: v for k, v in panel.items() if k != "panels"})
        out += [p for p in panel.get("panels") or [] if isinstance(p, dict)]
    return out


def _panel_label(panel: Mapping[str, Any]) -> str:
    pid = panel.get("id")
    if pid is not None:
        return f"panels[id={pid}]"
    return f"panels[title={json.dumps(str(panel.get('title', '')))}]"


def match_panels(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Pairs of the same panel (by id, then by title among the rest), and the panels only
    in `before` (removed) and only in `after` (added)."""
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    rest_b, rest_a = list(before), list(after)
    by_id: dict[Any, dict[str, Any]] = {}
    for p in rest_a:
        if p.get("id") is not None:
            by_id.setdefault(p.get("id"), p)
    for p in list(rest_b):
        other = by_id.pop(p.get("id"), None) if p.get("id") is not None else None
        if other is not None:
            pairs.append((p, other))
            rest_b.remove(p)
            rest_a.remove(other)
    for p in list(rest_b):
        other = next((q for q in rest_a if q.get("title") == p.get("title")), None)
        if other is not None:
            pairs.append((p, other))
            rest_b.remove(p)
            rest_a.remove(other)
    return pairs, rest_b, rest_a


def _model(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """A dashboard's model and the member holding it: the object itself when it is a
    model, else its `model` (tasks.grafana_state's normalized {uid, folderUid, model,
    permissions}) or `dashboard` member (a backup file's {uid, folderUid, dashboard})."""
    if "panels" not in obj:
        for member in ("model", "dashboard"):
            if isinstance(obj.get(member), dict):
                return obj[member], member
    return obj, ""


def _name(obj: Mapping[str, Any], key: str) -> str:
    model, _ = _model(obj)
    for k in ("title", "name", "login", "email"):
        if isinstance(model.get(k), str) and model[k]:
            return str(model[k])
        if isinstance(obj.get(k), str) and obj[k]:
            return str(obj[k])
    return key


def diff_dashboard(
    key: str, before: Mapping[str, Any], after: Mapping[str, Any], max_fields: int = MAX_FIELDS
) -> ObjectChange | None:
    """A dashboard's differences: panels matched by id then title, the rest by path."""
    mb, member = _model(before)
    ma, _ = _model(after)
    changes: list[FieldChange] = []
    # The object's own members (folderUid, permissions) by name; the model's fields by
    # their path in the dashboard JSON (what "Export as JSON" shows), without the member.
    outer_b = {k: v for k, v in before.items() if k != member} if member else {}
    outer_a = {k: v for k, v in after.items() if k != member} if member else {}
    changes += walk(outer_b, outer_a, "", VOLATILE | {"uid"})
    changes += walk(
        {k: v for k, v in mb.items() if k != "panels"},
        {k: v for k, v in ma.items() if k != "panels"},
        "",
        VOLATILE,
    )
    pairs, removed, added = match_panels(_panels(mb), _panels(ma))
    panels: list[PanelChange] = []
    base = ""
    for pb, pa in pairs:
        label = base + _panel_label(pa)
        inner = list(walk(pb, pa, label))
        if inner:
            changes += inner
            panels.append(
                PanelChange(
                    pa.get("id"),
                    str(pa.get("title", "")),
                    "changed",
                    [c.path[len(label) :].lstrip(".") or "(panel)" for c in inner][:max_fields],
                )
            )
    for p in removed:
        label = base + _panel_label(p)
        changes.append(FieldChange(label, _shown(p.get("title")), None, "removed"))
        panels.append(PanelChange(p.get("id"), str(p.get("title", "")), "removed"))
    for p in added:
        label = base + _panel_label(p)
        changes.append(FieldChange(label, None, _shown(p.get("title")), "added"))
        panels.append(PanelChange(p.get("id"), str(p.get("title", "")), "added"))
    if not changes:
        return None
    return ObjectChange(
        key,
        _name(after, key),
        changes[:max_fields],
        max(0, len(changes) - max_fields),
        panels,
    )


def diff_object(
    kind: str,
    key: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    max_fields: int = MAX_FIELDS,
) -> ObjectChange | None:
    """None when equal (volatile top-level fields ignored)."""
    if kind in DASHBOARD_KINDS:
        return diff_dashboard(key, before, after, max_fields)
    changes = list(walk(dict(before), dict(after), "", VOLATILE))
    if not changes:
        return None
    return ObjectChange(
        key, _name(after, key), changes[:max_fields], max(0, len(changes) - max_fields)
    )


def diff_org(
    org_id: int, before: OrgState, after: OrgState, max_fields: int = MAX_FIELDS
) -> OrgDiff:
    kinds: dict[str, KindDiff] = {}
    for kind in sorted(set(before) | set(after)):
        b, a = before.get(kind) or {}, after.get(kind) or {}
        kd = KindDiff()
        for key in sorted(set(b) | set(a)):
            if key not in b:
                kd.added.append(ObjectRef(key, _name(a[key], key)))
            elif key not in a:
                kd.removed.append(ObjectRef(key, _name(b[key], key)))
            else:
                change = diff_object(kind, key, b[key], a[key], max_fields)
                if change is None:
                    kd.unchanged += 1
                else:
                    kd.changed.append(change)
        kinds[kind] = kd
    return OrgDiff(org_id, kinds)


def diff_states(
    before: Mapping[int, OrgState], after: Mapping[int, OrgState], max_fields: int = MAX_FIELDS
) -> GrafanaDiff:
    """`before` (a backup) against `after` (the live Grafana): per org, per kind."""
    orgs: list[OrgDiff] = []
    for org_id in sorted(set(before) | set(after)):
        od = diff_org(org_id, before.get(org_id) or {}, after.get(org_id) or {}, max_fields)
        if org_id not in before:
            od.presence = "added"
        elif org_id not in after:
            od.presence = "removed"
        orgs.append(od)
    return GrafanaDiff(orgs)


def _field(f: FieldChange) -> dict[str, Any]:
    return {"path": f.path, "change": f.change, "before": f.before, "after": f.after}


def _panel(p: PanelChange) -> dict[str, Any]:
    return {"id": p.id, "title": p.title, "change": p.change, "fields": p.fields}


def diff_json(diff: GrafanaDiff) -> dict[str, Any]:
    """The `opskit diff grafana --json` shape (only kinds that differ are detailed)."""
    return {
        "differs": diff.differs,
        "counts": diff.counts(),
        "orgs": [
            {
                "org_id": o.org_id,
                "presence": o.presence,
                "kinds": {
                    kind: {
                        "added": [{"key": r.key, "name": r.name} for r in kd.added],
                        "removed": [{"key": r.key, "name": r.name} for r in kd.removed],
                        "changed": [
                            {
                                "key": c.key,
                                "name": c.name,
                                "fields": [_field(f) for f in c.fields],
                                "more_fields": c.more_fields,
                                "panels": [_panel(p) for p in c.panels],
                            }
                            for c in kd.changed
                        ],
                        "unchanged": kd.unchanged,
                    }
                    for kind, kd in o.kinds.items()
                },
            }
            for o in diff.orgs
        ],
    }
