"""The SimPy wiring. SimPy only orders events: the Eye process emits one Glimpse per fixation onto a
:class:`Broadcast`; each layer agent's process waits on its input channel, optionally waits its conduction
delay, runs the agent's (pure tensor) step and publishes the result on its own channel. Monitors are
processes subscribed to any channel."""
from __future__ import annotations

from typing import Callable, Generator, Sequence

import simpy

from agents.agent import LayerAgent

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
        for i, agent in enumerate(self.agents):
            self.env.process(self._agent_process(agent, self.channels[i], self.channels[i + 1], self.delays[i]))

    def every(self, n_events: int, fn: Hook, channel: int = -1) -> None:
        """Call ``fn(glimpse)`` on every n-th event of ``channel`` (-1: the last layer's output)."""
        self.env.process(self._hook_process(self.channels[channel], n_events, fn))

    def _agent_process(self, agent: LayerAgent, inbox: Broadcast, outbox: Broadcast, delay: float) -> Generator:
        while True:
            glimpse = yield inbox.wait()
            if delay:
                yield self.env.timeout(delay)
            outbox.publish(agent.step(glimpse))

    def _hook_process(self, channel: Broadcast, every: int, fn: Hook) -> Generator:
        while True:
            glimpse = yield channel.wait()
            if (glimpse.index + 1) % every == 0:
                fn(glimpse)

    def _eye_process(self, events: int, tick: Callable[[], None]) -> Generator:
        for _ in range(events):
            yield self.env.timeout(self.fixation_ms)
            self.channels[0].publish(self.eye.next_glimpse(self.env.now))
            tick()

    def _until(self, index: int) -> Generator:
        while (yield self.channels[-1].wait()).index < index:
            pass

    def run(self, events: int, tick: Callable[[], None] = lambda: None) -> None:
        """Simulate ``events`` more fixations and let every layer process the last one."""
        done = self.env.process(self._until(self.eye.event + events - 1))
        self.env.process(self._eye_process(events, tick))
        self.env.run(until=done)
