"""The SimPy wiring. SimPy only orders events: the Eye process emits one Glimpse per fixation onto a
:class:`Broadcast`; each layer agent's process waits on its input channel, optionally waits its conduction
delay, runs the agent's (pure tensor) step and publishes the result on its own channel. Monitors are
processes subscribed to any channel.

SimPy processes are generators and cannot be saved: a checkpoint is taken between :meth:`Simulation.run`
calls, when no event is in flight, and a restored run builds a new Simulation at the saved clock."""
from __future__ import annotations

from typing import Callable, Generator, Sequence

import simpy

from agents.agent import LayerAgent

from .closed_loop import check_channels, read_channels
from .events import Broadcast, Glimpse
from .eye import Eye

Hook = Callable[[Glimpse], None]


class Simulation:
    """Eye -> layer agents -> hooks, over simulated milliseconds."""

    def __init__(self, eye: Eye, agents: Sequence[LayerAgent], fixation_ms: float,
                 delays_ms: Sequence[float] = (), start_ms: float = 0.0) -> None:
        self.env = simpy.Environment(initial_time=start_ms)
        self.eye = eye
        self.agents = list(agents)
        self.fixation_ms = fixation_ms
        self.delays = list(delays_ms) or [0.0] * len(self.agents)
        self.channels = [Broadcast(self.env, "eye")] + [Broadcast(self.env, a.name) for a in self.agents]
        #: a closed-loop policy's channels: after each event it observes them before the next gazes are drawn
        self.subscribes = tuple(getattr(eye.policy, "subscribes", ()))
        self.latest: dict[str, Glimpse] = {}  #: the last Glimpse of "eye" and of each area (closed loop only)
        check_channels(self.subscribes, [a.name for a in self.agents])
        self.asynchronous = hasattr(eye, "next_time")  #: eyes on their own clocks (saccade_sim.asynchronous)
        for i, agent in enumerate(self.agents):
            self.env.process(self._agent_process(agent, self.channels[i], self.channels[i + 1], self.delays[i]))
        self.done = eye.event  # events that every layer has processed
        self.env.process(self._record_done())

    def every(self, n_events: int, fn: Hook, channel: int = -1) -> None:
        """Call ``fn(glimpse)`` on every n-th event of ``channel`` (-1: the last layer's output)."""
        self.env.process(self._hook_process(self.channels[channel], n_events, fn))

    def _agent_process(self, agent: LayerAgent, inbox: Broadcast, outbox: Broadcast, delay: float) -> Generator:
        while True:
            glimpse = yield inbox.wait()
            if delay:
                yield self.env.timeout(delay)
            out = agent.step(glimpse)
            if self.subscribes:
                self.latest[agent.name] = out
            outbox.publish(out)

    def _hook_process(self, channel: Broadcast, every: int, fn: Hook) -> Generator:
        while True:
            glimpse = yield channel.wait()
            if (glimpse.index + 1) % every == 0:
                fn(glimpse)

    def _eye_process(self, events: int, tick: Callable[[], None], stop: Callable[[], bool]) -> Generator:
        """Fixation k+1 comes ``fixation_ms`` after fixation k (the eye's own clock, so a run split into
        several :meth:`run` calls emits at the same times as one call). A closed-loop policy observes its
        channels once the last layer has processed fixation k, before fixation k+1 is drawn."""
        for _ in range(events):
            if stop():
                return
            if self.asynchronous:  # the end of the next time bin in which some eye's fixation ends
                due = self.eye.next_time()
            else:
                due = self.eye.time + self.fixation_ms if self.eye.event else self.env.now + self.fixation_ms
            yield self.env.timeout(max(due - self.env.now, 0.0))
            glimpse = self.eye.next_glimpse(self.env.now)
            self.channels[0].publish(glimpse)
            tick()
            if self.subscribes:
                self.latest["eye"] = glimpse
                yield self.channels[-1].wait()
                agents = {a.name: a for a in self.agents}
                self.eye.policy.observe(read_channels(self.subscribes, self.eye, agents, self.latest), glimpse.gaze)

    def _record_done(self) -> Generator:
        while True:
            self.done = (yield self.channels[-1].wait()).index + 1

    def run(self, events: int, tick: Callable[[], None] = lambda: None,
            stop: Callable[[], bool] = lambda: False) -> int:
        """Simulate up to ``events`` more fixations (fewer if ``stop()`` turns true before one) and let every
        layer process the last one, so that no event is in flight when this returns. Returns how many ran."""
        first = self.eye.event
        self.env.run(until=self.env.process(self._eye_process(events, tick, stop)))
        while self.done < self.eye.event:
            self.env.step()
        return self.eye.event - first
