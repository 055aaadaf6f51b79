"""Lessor views: condition report, evidence bundle, battery passport, pack history, transfer.

The bundle (``voltproof-bundle/2`` by default: ``gateway.evidence_v2.extract_bundle_v2``;
``?format=1``: ``gateway.evidence.extract_evidence``) is extracted from the store. The report
and the passport are computed from exactly the messages of the bundle served by default
(the v2 bundle's chains, ``gateway.evidence_v2.extract_payloads_v2``; before the gateway
commits the device index line, the v1 selection, ``gateway.evidence.extract_payloads``:
decoded once, chains checked, no proofs and no second signature check), so the
numbers served here are the numbers ``voltproof report BUNDLE`` recomputes offline from the
downloaded bundle, byte for byte.
A lessor's period is clipped to their lease; a v1 pack bundle includes the buses that hosted
the pack only for operator keys (a pack lessor does not lease the buses); a v2 pack bundle
always includes them, but only over the intervals the pack was in them (evidence v2).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response

from gateway.collector import gc_paused
from gateway.evidence import PayloadExtraction, extract_evidence, extract_payloads, frames_in
from gateway.evidence_v2 import NoIndexLineError, extract_bundle_v2, extract_payloads_v2
from ledger.anchors.checkers import LocalAnchorChecker
from ledger.batterypass import (
    PackIdentity,
    PassportSettingError,
    battery_passport,
    pack_identity,
    parse_passport_setting,
)
from ledger.bundle import Bundle, build_bundle
from ledger.bundle_v2 import BundleV2
from ledger.errors import VerificationError
from ledger.gbt32960.figures import with_terminal_figures
from ledger.keys import KeyFileError, load_key_file
from ledger.report import ConditionReport, compute_report
from ledger.verify import check_messages
from ledger.verify_v2 import verify_bundle_v2

from ..access import Principal, Role, Window
from ..accessdb import AccessError, OwnershipError
from ..deps import (
    AppState,
    CurrentUser,
    CursorQuery,
    CursorsDep,
    DashboardDep,
    StateDep,
    TelemetryUser,
    not_found,
    visible_device,
    window_of,
)
from ..schemas import (
    ChainVerdictPublic,
    EvidenceVerdictPublic,
    HistoryPublic,
    StintPublic,
    TransferIn,
    TransferPublic,
)
from ..times import TimeMs

router = APIRouter(prefix="/api/assets", tags=["evidence"])
packs_router = APIRouter(prefix="/api/packs", tags=["packs"])


async def _window(
    state: AppState, user: Principal, asset: str, from_ms: int | None, to_ms: int | None
) -> tuple[Window, tuple[int, int] | None]:
    """The period the user may see of ``asset`` (an end after now, open or a lease's future
    end, stops now: evidence can speak only of what the log holds), and the grant that
    bounds its boundary messages (``None`` for operators: all time). A period that starts
    after now (a lease that has not begun) is a 404 saying so: nothing can be logged in it."""
    device = await visible_device(state.dashboard, user, asset)
    window = window_of(user, device, from_ms, to_ms)
    permitted = user.grant_for(asset, device.fleet, window)
    grant = None
    if user.role is not Role.OPERATOR and permitted is not None:
        grant = (permitted.from_ms, permitted.to_ms)
    now = _now_ms() + 1
    if window.from_ms >= now:
        raise HTTPException(
            status_code=404,
            detail=f"the period of {asset} starts at {window.from_ms} ms, after now: nothing "
            "is logged in it yet",
        )
    if window.to_ms > now:
        window = Window(from_ms=window.from_ms, to_ms=now)
    return window, grant


async def _bundle(
    state: AppState, user: Principal, asset: str, from_ms: int | None, to_ms: int | None
) -> Bundle:
    window, grant = await _window(state, user, asset, from_ms, to_ms)
    try:
        operator_key = load_key_file(state.deployment.gateway.operator_key_file).public_key
    except KeyFileError as exc:
        raise HTTPException(status_code=503, detail=f"operator key unavailable: {exc}") from exc
    extraction = await extract_evidence(
        state.reader, asset_id=asset, from_ms=window.from_ms, to_ms=window.to_ms,
        operator_key=operator_key, anchor_db=state.deployment.anchor_db,
        follow_hosts=user.role is Role.OPERATOR, grant=grant,
    )  # fmt: skip
    # Decoding a long period takes seconds of CPU: off the event loop, so that the
    # server keeps answering other requests meanwhile.
    return await asyncio.to_thread(build_bundle, extraction.bundle_input)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def report_of(bundle: Bundle) -> ConditionReport:
    """The condition report of a bundle's checked messages (every signature checked)."""
    checked = check_messages(bundle)
    return _paused_report(
        checked.payloads, asset_id=bundle.asset_id, asset_kind=bundle.asset_kind,
        from_ms=bundle.from_ms, to_ms=bundle.to_ms,
    )  # fmt: skip


def _paused_report(
    payloads: Iterable[Mapping[str, Any]],
    *,
    asset_id: str,
    asset_kind: str,
    from_ms: int,
    to_ms: int,
    predecessors: tuple[str, ...] = (),
) -> ConditionReport:
    """``compute_report`` with the cyclic collector paused (it builds many acyclic objects)."""
    with gc_paused():
        return compute_report(payloads, asset_id=asset_id, asset_kind=asset_kind,
                              from_ms=from_ms, to_ms=to_ms,
                              predecessors=predecessors)  # fmt: skip


async def _report(
    state: AppState, user: Principal, asset: str, from_ms: int | None, to_ms: int | None
) -> ConditionReport:
    """The report of the bundle ``/bundle`` serves by default, so the lessor's offline
    ``voltproof report`` of the download gives the same numbers, byte for byte.

    That is the v2 bundle (:func:`_bundle_v2`: a pack's hosts and a bus's installed packs
    only over their intervals, for every user), read by ``extract_payloads_v2`` (the same
    selection, decoded once, chains checked, no proofs and no second signature check);
    while the anchored checkpoint carries no device index line (no v2 bundle can be built)
    it is the v1 selection (:func:`_report_v1`), equal to ``report_of(await _bundle(...))``.
    """
    window, grant = await _window(state, user, asset, from_ms, to_ms)
    try:
        found = await extract_payloads_v2(
            state.reader, asset_id=asset, from_ms=window.from_ms, to_ms=window.to_ms,
            grant=grant,
        )  # fmt: skip
    except NoIndexLineError:
        return await _report_v1(state, user, asset, from_ms, to_ms)
    return await _report_of(found)


async def _report_v1(
    state: AppState, user: Principal, asset: str, from_ms: int | None, to_ms: int | None
) -> ConditionReport:
    """The report of the v1 bundle :func:`_bundle` would serve, from the store's payloads."""
    window, grant = await _window(state, user, asset, from_ms, to_ms)
    found = await extract_payloads(
        state.reader, asset_id=asset, from_ms=window.from_ms, to_ms=window.to_ms,
        follow_hosts=user.role is Role.OPERATOR, grant=grant,
    )  # fmt: skip
    return await _report_of(found)


async def _report_of(found: PayloadExtraction) -> ConditionReport:
    """The condition report of extracted payloads; for a GB/T 32960 bus, with the pack
    figures and evidence label of its frames, as ``voltproof report`` adds them offline."""
    report = await asyncio.to_thread(
        _paused_report, found.payloads, asset_id=found.asset_id, asset_kind=found.asset_kind,
        from_ms=found.from_ms, to_ms=found.to_ms, predecessors=found.predecessors,
    )  # fmt: skip
    return with_terminal_figures(report, await asyncio.to_thread(frames_in, found))


async def _bundle_v2(
    state: AppState, user: Principal, asset: str, from_ms: int | None, to_ms: int | None
) -> BundleV2:
    """The v2 bundle of the asset over the user's window (hosts only over hosting intervals).

    Clipped to the grant's window, boundary messages included: a lessor's bundle holds no
    message dated outside its grant, nor a partner's outside the interval of its chain
    (the verifier then reports those ends as not proven); an operator gets every boundary.
    """
    window, grant = await _window(state, user, asset, from_ms, to_ms)
    try:
        operator_key = load_key_file(state.deployment.gateway.operator_key_file).public_key
    except KeyFileError as exc:
        raise HTTPException(status_code=503, detail=f"operator key unavailable: {exc}") from exc
    return await extract_bundle_v2(
        state.reader, asset_id=asset, from_ms=window.from_ms, to_ms=window.to_ms,
        operator_key=operator_key, anchor_db=state.deployment.anchor_db, grant=grant,
    )  # fmt: skip


@router.get("/{asset}/bundle", response_class=Response)
async def bundle(
    *,
    state: StateDep,
    user: TelemetryUser,
    asset: str,
    from_ms: Annotated[TimeMs, Query(alias="from")] = None,
    to_ms: Annotated[TimeMs, Query(alias="to")] = None,
    version: Annotated[int, Query(alias="format", ge=1, le=2)] = 2,
) -> Response:
    """The evidence file of the asset over the period (download): ``voltproof-bundle/2``
    by default, ``?format=1`` for ``voltproof-bundle/1``. A v2 bundle needs an anchored
    checkpoint that carries the device index line (422 with the reason otherwise)."""
    found: Bundle | BundleV2
    if version == 2:
        found = await _bundle_v2(state, user, asset, from_ms, to_ms)
    else:
        found = await _bundle(state, user, asset, from_ms, to_ms)
    name = f"{asset}-{found.from_ms}-{found.to_ms}.vpbundle.json"
    return Response(
        content=found.to_bytes(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/{asset}/verdict", response_model=EvidenceVerdictPublic)
async def verdict(
    *,
    state: StateDep,
    user: TelemetryUser,
    asset: str,
    from_ms: Annotated[TimeMs, Query(alias="from")] = None,
    to_ms: Annotated[TimeMs, Query(alias="to")] = None,
) -> EvidenceVerdictPublic:
    """The v2 verdict of the bundle ``/bundle`` serves for the same period, checked here by
    the offline verifier (every signature, proof, registry rule and chain).

    The anchor is checked against the operator's own table embedded in the bundle (an EVM
    anchor not at all), so the answer is never independent: it says what a lessor's
    ``voltproof verify`` of the download will find, which only their own check can confirm.
    A bundle that does not verify is ``valid: false`` with the error named (a 200: it is
    the answer, not a failure of the request). Checking a long period costs what ``voltproof
    verify`` costs, on a worker thread; the dashboard asks only when its proof panel opens.
    """
    bundle = await _bundle_v2(state, user, asset, from_ms, to_ms)
    try:
        gateway_key = load_key_file(state.deployment.gateway.key_file).verifier_key
    except KeyFileError as exc:
        raise HTTPException(status_code=503, detail=f"gateway key unavailable: {exc}") from exc
    return await asyncio.to_thread(_verdict_of, bundle, gateway_key)


def _verdict_of(bundle: BundleV2, gateway_key: str) -> EvidenceVerdictPublic:
    """``verify_bundle_v2`` of ``bundle`` against the copy of the anchor table it embeds."""
    common: dict[str, Any] = {
        "asset": bundle.asset_id, "kind": bundle.asset_kind, "format": bundle.format,
        "from_ms": bundle.from_ms, "to_ms": bundle.to_ms,
        "anchor_backend": bundle.anchor.receipt.backend, "independent": False,
    }  # fmt: skip
    checker = LocalAnchorChecker(gateway_verifier_key=gateway_key)
    try:
        with gc_paused():
            found = verify_bundle_v2(bundle, gateway_verifier_key=gateway_key, anchors=checker)
    except VerificationError as exc:
        name = type(exc).__name__
        return EvidenceVerdictPublic(
            **common, valid=False, complete=False, verdict=f"INVALID: {name}: {exc}",
            error=name, checkpoint_origin=None, checkpoint_size=None, anchored_at_ms=None,
            anchor_source=None, chains=[], absent=[],
        )  # fmt: skip
    chains = [
        ChainVerdictPublic(
            device=c.device, role=c.role, from_ms=c.from_ms, to_ms=c.to_ms,
            first_seq=c.first_seq, last_seq=c.last_seq, received=c.received,
            expected=c.expected, missing=[[g.first, g.last] for g in c.gaps],
            start_proven=c.start_proven, end_proven=c.end_proven, complete=c.complete,
        )
        for c in found.chains
    ]  # fmt: skip
    return EvidenceVerdictPublic(
        **common, valid=True, complete=found.complete,
        verdict="VALID, COMPLETE" if found.complete else "VALID but INCOMPLETE", error=None,
        checkpoint_origin=found.origin, checkpoint_size=found.checkpoint_size,
        anchored_at_ms=found.anchor.anchored_at_ms, anchor_source=found.anchor.source,
        chains=chains, absent=sorted({a.device for a in found.absent}),
    )  # fmt: skip


@router.get("/{asset}/report")
async def report(
    *,
    state: StateDep,
    user: TelemetryUser,
    asset: str,
    from_ms: Annotated[TimeMs, Query(alias="from")] = None,
    to_ms: Annotated[TimeMs, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The condition report (``voltproof-condition-report/1``) of the bundle's messages."""
    return (await _report(state, user, asset, from_ms, to_ms)).to_dict()


@router.get("/{asset}/passport")
async def passport(
    *,
    state: StateDep,
    user: TelemetryUser,
    asset: str,
    from_ms: Annotated[TimeMs, Query(alias="from")] = None,
    to_ms: Annotated[TimeMs, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The complete battery passport (Tractus-X ``battery_pass`` 6.1.0) of a pack.

    The passport setting's static sections, the pack's identity from its registry entries
    and birth certificate, and ``performance.dynamic`` from the condition report; every
    value not known is a placeholder named in ``performance.dynamic.performanceDocument``.
    """
    device = await visible_device(state.dashboard, user, asset)
    if device.kind != "pack":
        raise HTTPException(status_code=400, detail=f"{asset!r} is a bus; passports are for packs")
    setting = await asyncio.to_thread(passport_setting, state.deployment.passport)
    report = await _report(state, user, asset, from_ms, to_ms)
    return battery_passport(report, static=setting, identity=await _identity(state, asset))


def passport_setting(path: Path) -> dict[str, Any]:
    """The passport setting at ``path`` (none: ``{}``); 503 when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise HTTPException(status_code=503, detail=f"passport setting unreadable: {exc}") from exc
    except UnicodeDecodeError as exc:
        detail = f"{path.name}: not UTF-8 text ({exc.reason})"
        raise HTTPException(status_code=503, detail=detail) from exc
    try:
        return parse_passport_setting(text)
    except PassportSettingError as exc:
        raise HTTPException(status_code=503, detail=f"{path.name}: {exc}") from exc


async def _identity(state: AppState, pack: str) -> PackIdentity:
    """The pack's identity from its registry leaves (enrolment and birth certificate)."""
    leaves = await state.reader.registry_leaves([pack], leaf_below=2**63 - 1)
    return pack_identity(pack, [(leaf.leaf_index, leaf.cose) for leaf in leaves])


@router.get("/{asset}/history", response_model=HistoryPublic)
async def history(
    *,
    dashboard: DashboardDep,
    cursors: CursorsDep,
    user: TelemetryUser,
    asset: str,
    from_ms: Annotated[TimeMs, Query(alias="from")] = None,
    to_ms: Annotated[TimeMs, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000, description="messages per page")] = 100_000,
    cursor: CursorQuery = None,
) -> HistoryPublic:
    """The buses a pack was installed in, read from the pack's own signed messages, a keyset
    page of ``limit`` messages at a time (``next`` continues)."""
    device = await visible_device(dashboard, user, asset)
    if device.kind != "pack":
        raise HTTPException(status_code=400, detail=f"{asset!r} is a bus; history is for packs")
    window = window_of(user, device, from_ms, to_ms)
    scope = cursors.scope("history", user.name, asset=asset, window=[window.from_ms, window.to_ms])
    position = cursors.decode(scope, cursor, (int, int))
    after = None if position is None else (int(position[0]), int(position[1]))
    stints, last = await dashboard.pack_stints(asset, window, limit=limit, after=after)
    data = [StintPublic(bus=s.bus, from_ms=s.from_ms, to_ms=s.to_ms, messages=s.messages)
            for s in stints]  # fmt: skip
    next_cursor = None if last is None else cursors.encode(scope, last)
    return HistoryPublic(pack=asset, data=data, count=len(data), next=next_cursor)


@packs_router.post("/{pack}/transfer", response_model=TransferPublic, status_code=201)
async def transfer(
    *, state: StateDep, user: CurrentUser, pack: str, body: TransferIn
) -> TransferPublic:
    """Sell a pack (second life): the buyer's lessor key gets the pack's whole history.

    Allowed for an operator of the pack's fleet and for the lessor who owns the pack now (by
    the latest transfer), never to its current owner; the seller's access ends now.
    """
    device = await state.dashboard.device(pack)
    if device is None or device.kind != "pack" or not user.windows(pack, device.fleet):
        raise not_found(pack)
    try:
        await state.access.transfer(
            pack=pack, owner=body.to, by=user.name, by_operator=user.role is Role.OPERATOR,
            now_ms=_now_ms(),
        )  # fmt: skip
    except OwnershipError as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from exc
    except AccessError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    return TransferPublic(pack=pack, owner=body.to)
