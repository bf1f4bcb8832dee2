"""The opskit Textual app: live screens over the poller, actions through the core."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker

from opskit.config import Settings
from opskit.errors import OpskitError, UsageError
from opskit.live import LiveState, Poller
from opskit.record import Recorder, ReplaySource
from opskit.screens.alerts import AlertsScreen, SilencesScreen
from opskit.screens.base import Host, LiveScreen
from opskit.screens.doctor import DoctorScreen
from opskit.screens.fleet import FleetScreen, FleetView
from opskit.screens.indices import IndicesScreen
from opskit.screens.modals import Confirm, Help, Picker, SilenceForm, SilenceRequest
from opskit.screens.overview import OverviewScreen
from opskit.screens.tables import QueuesScreen, ServicesScreen, TargetsScreen
from opskit.screens.traces import TracesScreen
from opskit.stack import Stack

if TYPE_CHECKING:
    from opskit.fleet import Fleet, FleetRow
    from opskit.models import Alert, Silence
    from opskit.tasks.doctor.model import DoctorReport

SCREENS_BY_NAME: dict[str, type[LiveScreen]] = {
    "overview": OverviewScreen,
    "targets": TargetsScreen,
    "alerts": AlertsScreen,
    "silences": SilencesScreen,
    "queues": QueuesScreen,
    "indices": IndicesScreen,
    "services": ServicesScreen,
    "doctor": DoctorScreen,
    "traces": TracesScreen,
    "fleet": FleetScreen,
}
ContextLoader = Callable[[str], Settings]


class OpskitApp(App[None]):
    CSS_PATH = Path(__file__).with_name("opskit.tcss")
    TITLE = "opskit"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[None]]]] = dict(SCREENS_BY_NAME)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("r", "refresh", "Refresh", id="refresh"),
        Binding("p", "pause", "Pause", id="pause"),
        Binding("f", "faults", "Faults only", id="faults"),
        Binding("colon", "jump", "Go to", id="jump"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("c", "switch_context", "Context", id="context"),
        Binding("1", "switch_mode('overview')", "Overview", show=False, id="overview"),
        Binding("2", "switch_mode('targets')", "Targets", show=False, id="targets"),
        Binding("3", "switch_mode('alerts')", "Alerts", show=False, id="alerts"),
        Binding("4", "switch_mode('queues')", "Queues", show=False, id="queues"),
        Binding("5", "switch_mode('indices')", "Indices", show=False, id="indices"),
        Binding("6", "switch_mode('services')", "Services", show=False, id="services"),
        Binding("7", "switch_mode('doctor')", "Doctor", show=False, id="doctor"),
        Binding("8", "switch_mode('traces')", "Traces", show=False, id="traces"),
        Binding("0", "switch_mode('fleet')", "Fleet", show=False, id="fleet"),
        # replay only (check_action hides them otherwise)
        Binding("left_square_bracket", "replay_step(-1)", "Back", id="replay_back"),
        Binding("right_square_bracket", "replay_step(1)", "Forward", id="replay_forward"),
        Binding(
            "left_curly_bracket", "replay_step(-10)", "Back 10", show=False, id="replay_back_10"
        ),
        Binding(
            "right_curly_bracket",
            "replay_step(10)",
            "Forward 10",
            show=False,
            id="replay_forward_10",
        ),
        Binding("t", "replay_jump", "Time", id="replay_jump"),
        Binding("space", "replay_play", "Play", id="replay_play"),
    ]
    REPLAY_ONLY = ("replay_step", "replay_jump", "replay_play")
    LIVE_ONLY = ("refresh", "switch_context")

    def __init__(
        self,
        settings: Settings,
        interval: float | None = None,
        contexts: Iterable[str] = (),
        load_context: ContextLoader | None = None,
        poll: bool = True,
        state: LiveState | None = None,
        record: Path | None = None,
        replay: ReplaySource | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.interval = interval or settings.refresh.total_seconds()
        self.record_path = record
        self.recorder: Recorder | None = None
        self.replay = replay
        self.replay_index = 0
        self.replay_playing = False
        self._play_timer: Timer | None = None
        if replay is not None:  # read-only, never polling: the recorded state at a cursor
            settings = settings.model_copy(update={"read_only": True})
            self.settings = settings
            self.interval = interval or replay.interval
            poll = False
            self.replay_index = max(len(replay.instants) - 1, 0)
            state = state or self._replay_state()
        self.contexts = ["default", *contexts]
        self.load_context = load_context
        self.poll = poll
        self.state = state or LiveState()
        self.faults_only = False
        self.initial_mode = "overview"
        self.doctor_report: DoctorReport | None = None
        self.doctor_running = False
        self.stack: Stack | None = None
        self.poller: Poller | None = None
        self._poll_worker: Worker[None] | None = None
        # issue 19: every context at once, polled while the Fleet screen (or the merged
        # alerts) is shown; a Stack per context, kept across polls and context switches
        self.fleet = FleetView(self.fleet_contexts())
        self._fleet: Fleet | None = None

    # ------------------------------------------------------------------ lifecycle
    def on_mount(self) -> None:
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)
        self.switch_mode(self.initial_mode)
        if self.poll:
            self.start_polling()
        if self.replay is not None:
            self._play_timer = self.set_interval(1.0, self._replay_tick, pause=True)

    def start_polling(self) -> None:
        if self.record_path is not None and self.recorder is None:
            self.recorder = Recorder(
                self.record_path, context=self.settings.context, interval=self.interval
            )
        self.stack = Stack(self.settings)
        self.poller = Poller(self.stack, self.state, self.interval, self.source_changed)
        self._poll_worker = self.run_worker(
            self.poller.run(), exclusive=True, group="poller", name="poller"
        )

    async def stop_polling(self) -> None:
        if self._poll_worker is not None:
            self._poll_worker.cancel()
            self._poll_worker = None
        if self.stack is not None:
            await self.stack.aclose()
            self.stack = None

    async def on_unmount(self) -> None:
        await self.stop_polling()
        if self._fleet is not None:
            await self._fleet.aclose()
            self._fleet = None
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    def source_changed(self, name: str, transitioned: bool) -> None:
        if self.recorder is not None:
            self.recorder.write(self.state[name])
        screen = self.screen  # only the screen shown renders; the others on resume
        if isinstance(screen, LiveScreen):
            screen.schedule_refresh(name)  # coalesced: one render per frame at most
        if transitioned:
            src = self.state[name]
            if src.status in ("stale", "unreachable"):
                self.notify(src.banner(), severity="error", timeout=6)
            elif src.status == "ok" and src.failures == 0 and src.last_ok:
                self.notify(f"{name}: back", timeout=3)

    def refresh_screen(self) -> None:
        screen = self.screen
        if isinstance(screen, LiveScreen):
            screen.refresh_from(self.state, None)

    # ------------------------------------------------------------------ replay
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.REPLAY_ONLY:
            return self.replay is not None
        if action in self.LIVE_ONLY:
            return self.replay is None
        return True

    @property
    def replay_at(self) -> datetime | None:
        if self.replay is None or not self.replay.instants:
            return None
        return self.replay.instants[self.replay_index]

    @property
    def replay_label(self) -> str:
        """The context bar's cursor ("" when live)."""
        if self.replay is None:
            return ""
        at = self.replay_at
        if at is None:
            return "replay: empty recording"
        when = at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        n = len(self.replay.instants)
        play = " playing" if self.replay_playing else ""
        return f"replay {when} ({self.replay_index + 1}/{n}){play}"

    def _replay_state(self) -> LiveState:
        at = self.replay_at
        return self.replay.state_at(at) if self.replay and at else LiveState()

    def replay_to(self, index: int) -> None:
        """Move the time cursor to recorded instant `index` (clamped) and redraw."""
        if self.replay is None or not self.replay.instants:
            return
        self.replay_index = min(max(index, 0), len(self.replay.instants) - 1)
        self.state = self._replay_state()
        self.refresh_screen()

    def replay_to_time(self, when: datetime) -> None:
        """The cursor to the latest recorded instant at or before `when`."""
        if self.replay is not None:
            self.replay_to(self.replay.index_at(when))

    def action_replay_step(self, steps: int) -> None:
        self.replay_to(self.replay_index + steps)

    def action_replay_jump(self) -> None:
        if self.replay is None or not self.replay.instants:
            return
        shown = {i.astimezone().strftime("%Y-%m-%d %H:%M:%S"): n
                 for n, i in enumerate(self.replay.instants)}  # fmt: skip
        options = list(shown)
        if len(options) > 5000:  # keep the picker quick: every k-th instant, and the last
            k = len(options) // 5000 + 1
            options = [*options[::k], options[-1]]

        def chosen(picked: str | None) -> None:
            if picked in shown:
                self.replay_to(shown[picked])

        current = options[-1]
        self.push_screen(Picker("Jump to time (type e.g. 03:12)", options, current), chosen)

    def action_replay_play(self) -> None:
        if self._play_timer is None:
            return
        self.replay_playing = not self.replay_playing
        if self.replay_playing:
            self._play_timer.resume()
        else:
            self._play_timer.pause()
        self.refresh_screen()

    def _replay_tick(self) -> None:
        if self.replay is None or self.replay_index >= len(self.replay.instants) - 1:
            self.replay_playing = False
            if self._play_timer is not None:
                self._play_timer.pause()
            self.refresh_screen()
            return
        self.replay_to(self.replay_index + 1)

    # ------------------------------------------------------------------ app actions
    def action_refresh(self) -> None:
        if self.poller is not None:
            self.poller.refresh_now()

    def action_pause(self) -> None:
        if self.replay is not None:
            self.action_replay_play()
            return
        self.state.paused = not self.state.paused
        self.notify("paused" if self.state.paused else "live", timeout=2)
        self.refresh_screen()

    def action_faults(self) -> None:
        self.faults_only = not self.faults_only
        self.refresh_screen()

    def action_jump(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.switch_mode(name)

        self.push_screen(Picker("Go to screen", list(SCREENS_BY_NAME)), chosen)

    def action_help(self) -> None:
        lines = []
        for binding in [*self.BINDINGS, *getattr(self.screen, "BINDINGS", [])]:
            if isinstance(binding, Binding):
                key = self.get_key_display(binding)
                lines.append(f"[b]{key:>8}[/b]  {binding.description}")
        lines.append(
            "\n[dim]Every action is also in the command palette (ctrl+p). "
            "Keys can be remapped in the config's [keymap] table by binding id.[/]"
        )
        self.push_screen(Help("\n".join(lines)))

    def action_switch_context(self) -> None:
        if self.load_context is None or len(self.contexts) < 2:
            self.notify("no other contexts configured", timeout=3)
            return

        def chosen(name: str | None) -> None:
            if name and name != self.settings.context:
                self.run_worker(self.use_context(name), group="context", exclusive=True)

        self.push_screen(Picker("Switch context", self.contexts, self.settings.context), chosen)

    async def use_context(self, name: str) -> None:
        assert self.load_context is not None
        try:
            settings = self.load_context(name)
        except OpskitError as exc:
            self.notify(str(exc), severity="error")
            return
        await self.stop_polling()
        self.settings = settings
        self.state = LiveState()
        self.refresh_screen()
        self.start_polling()
        self.notify(f"context: {name}", timeout=3)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name in SCREENS_BY_NAME:
            yield SystemCommand(
                f"Go to {name}", f"Show the {name} screen", lambda n=name: self.switch_mode(n)
            )
        yield SystemCommand("Refresh now", "Poll every source now", self.action_refresh)
        yield SystemCommand("Pause / resume", "Stop or restart live refresh", self.action_pause)
        yield SystemCommand(
            "Faults only", "Only down, critical, red and yellow rows", self.action_faults
        )
        yield SystemCommand(
            "Switch context", "Another cluster from the config", self.action_switch_context
        )

    def run_doctor(self) -> None:
        if self.stack is None or self.doctor_running:
            return
        self.doctor_running = True
        self.refresh_screen()
        self.run_worker(self._doctor(self.stack), group="doctor", exclusive=True)

    async def _doctor(self, stack: Stack) -> None:
        from opskit.tasks.doctor import run_doctor

        try:
            self.doctor_report = await run_doctor(stack)
        except OpskitError as exc:
            self.notify(f"doctor: {exc}", severity="error")
        finally:
            self.doctor_running = False
        self.refresh_screen()

    def open_incident(self, alert: Alert) -> None:
        """The incident screen of one alert (issue 17), over the current screen."""
        from opskit.screens.incident import IncidentScreen

        self.push_screen(IncidentScreen(alert.fingerprint, alert))

    # ------------------------------------------------------------------ the fleet
    def fleet_contexts(self) -> list[str]:
        """The Fleet screen's contexts: the configuration's named ones (all of them when
        there are none but the default), with the current one first if it is not named."""
        named = [c for c in self.contexts if c != "default"]
        current = self.settings.context
        return named if current in named else [current, *named]

    def poll_fleet(self) -> None:
        """One refresh of every context, in a worker (none while one runs, when paused,
        or without polling: fixed data and replays show what the fleet holds)."""
        if not self.poll or self.state.paused or self.fleet.polling:
            return
        self.fleet.polling = True
        self.run_worker(self._poll_fleet(), group="fleet", exclusive=True)

    def _fleet_settings(self, name: str) -> Settings | str:
        if name == self.settings.context:
            return self.settings
        if self.load_context is None:
            return "config: no configuration to load it from"
        try:
            return self.load_context(name)
        except OpskitError as exc:
            return f"config: {exc}"

    async def _poll_fleet(self) -> None:
        from opskit.fleet import Fleet

        try:
            if self._fleet is None:
                self._fleet = Fleet({n: self._fleet_settings(n) for n in self.fleet.contexts})
            fleet = self._fleet

            def landed(row: FleetRow) -> None:
                self.fleet.rows[row.context] = row
                self.fleet.alerts = fleet.merged_alerts()
                screen = self.screen
                if isinstance(screen, LiveScreen):
                    screen.schedule_refresh(None)

            await fleet.refresh(landed)
            self.fleet.refreshes += 1
        finally:
            self.fleet.polling = False

    def switch_to_context(self, name: str) -> None:
        """Enter on a Fleet row: the app's context switch, then that context's Overview."""

        async def go() -> None:
            if name != self.settings.context:
                await self.use_context(name)
            self.switch_mode("overview")

        self.run_worker(go(), group="context", exclusive=True)

    def silence_in_context(self, alert: Alert, context: str) -> None:
        """Silence an alert of the merged list in its own context (refused when that
        context is read-only)."""
        from opskit.matchers import default_author

        row = self.fleet.rows.get(context)
        if row is None:
            self.notify(f"context {context!r}: not read yet", severity="warning")
            return
        if row.read_only:
            self.notify(f"context {context!r} is read-only: silence refused", severity="error")
            return

        def done(request: SilenceRequest | None) -> None:
            if request is not None:
                self.run_worker(self._silence_in(context, request), group="actions")

        self.push_screen(SilenceForm(alert, default_author()), done)

    async def _silence_in(self, context: str, request: SilenceRequest) -> None:
        fleet = self._fleet
        stack = fleet.stacks.get(context) if fleet is not None else None
        if stack is None or stack.settings.read_only:
            self.notify(f"context {context!r}: silence refused", severity="error")
            return
        starts = datetime.now(UTC)
        try:
            silence_id = await stack.alertmanager.add_silence(
                request.matchers, starts, starts + request.duration, request.author,
                request.comment,
            )  # fmt: skip
        except OpskitError as exc:
            self.notify(f"silence failed ({context}): {exc}", severity="error")
            return
        self.notify(f"silence {silence_id[:8]} created in {context}", timeout=4)
        self.poll_fleet()  # shows it (or the next poll does, when one is running)
        if context == self.settings.context and self.poller is not None:
            self.poller.refresh_now(("alerts", "silences"))

    # ------------------------------------------------------------------ write actions
    def open_silence_form(self, alert: Alert) -> None:
        from opskit.matchers import default_author

        def done(request: SilenceRequest | None) -> None:
            if request is not None:
                self.run_worker(self.add_silence(request), group="actions")

        self.push_screen(SilenceForm(alert, default_author()), done)

    async def add_silence(self, request: SilenceRequest) -> None:
        if self.stack is None or self.settings.read_only:
            return
        starts = datetime.now(UTC)
        try:
            silence_id = await self.stack.alertmanager.add_silence(
                request.matchers,
                starts,
                starts + request.duration,
                request.author,
                request.comment,
            )
        except OpskitError as exc:
            self.notify(f"silence failed: {exc}", severity="error")
            return
        self.notify_replicated(f"silence {silence_id[:8]} created")
        if self.poller is not None:
            self.poller.refresh_now(("alerts", "silences"))

    def notify_replicated(self, done: str) -> None:
        """`done`, and for a cluster how far it replicated: 'replicated to 3/3 peers' (a
        warning naming the peers that did not confirm in time)."""
        replication = getattr(self.stack, "alertmanager", None)
        replication = getattr(replication, "last_replication", None)
        if replication is None:
            self.notify(done, timeout=4)
        else:
            text = f"{done}; {replication.summary()}"
            if replication.complete:
                self.notify(text, timeout=6)
            else:
                self.notify(text, severity="warning", timeout=8)

    def confirm_expire(self, silence: Silence) -> None:
        plan = f"Expire silence {silence.id}\nmatchers: {' '.join(silence.matchers)}"

        def done(yes: bool | None) -> None:
            if yes:
                self.run_worker(self.expire_silence(silence.id), group="actions")

        self.push_screen(Confirm("Expire silence?", plan), done)

    async def expire_silence(self, silence_id: str) -> None:
        if self.stack is None or self.settings.read_only:
            return
        try:
            await self.stack.alertmanager.expire_silence(silence_id)
        except OpskitError as exc:
            self.notify(f"expire failed: {exc}", severity="error")
            return
        self.notify_replicated(f"silence {silence_id[:8]} expired")
        if self.poller is not None:
            self.poller.refresh_now(("alerts", "silences"))

    def confirm_snapshot(self, names: list[str]) -> None:
        from opskit.screens.index_actions import confirm_snapshot

        confirm_snapshot(self, names)

    def confirm_delete(self, names: list[str]) -> None:
        from opskit.screens.index_actions import confirm_delete

        confirm_delete(self, names)


def create_app(
    settings: Settings,
    *,
    refresh: float | None = None,
    contexts: Iterable[str] = (),
    load_context: ContextLoader | None = None,
    poll: bool = True,
    state: LiveState | None = None,
    record: Path | None = None,
    replay: Path | ReplaySource | None = None,
) -> OpskitApp:
    """The one way the TUI is built, by `opskit` and by the tests: `refresh` (seconds)
    overrides the config's interval; `poll=False` with a `state` shows fixed data;
    `record` writes every poll to that recording; `replay` (a recording's path or an
    open `ReplaySource`) shows a recording read-only, never polling, with a time cursor."""
    if refresh is not None and refresh <= 0:
        raise UsageError("--refresh must be greater than zero")
    source = ReplaySource(replay) if isinstance(replay, Path) else replay
    return OpskitApp(settings, refresh, contexts, load_context, poll, state, record, source)


def _is_host(app: OpskitApp) -> Host:
    """Never called: mypy checks here that the app gives screens all of `Host`."""
    return app
