"""The SimPy wiring, from the network's graph (:mod:`saccade_sim.wiring`). SimPy only orders events: the Eye
process emits one Glimpse per fixation onto a :class:`Broadcast`; each layer agent's process waits on its
feedforward input channel, optionally waits its conduction delay, runs the agent's (pure tensor) step and
publishes the result on its own channel; each dendritic edge's process waits on its source's channel and, after
its delay, hands the output to its target's dendrite. Monitors are
processes subscribed to any channel. A saccade policy that ``subscribes`` to channels
(:mod:`saccade_sim.channels`) is given their latest tensors after each event, once the last layer has processed
it, before the eye samples the next gaze (so a closed-loop eye's next fixation comes no earlier than the network's
answer, and the observation is part of the event: a checkpoint between events keeps it). Asynchronous eyes
(:mod:`saccade_sim.asynchronous`) set each event's time to the end of the next time bin in which a fixation ends.

SimPy processes are generators and cannot be saved: a checkpoint is taken between :meth:`Simulation.run`
calls, when no event is in flight, and a restored run builds a new Simulation at the saved clock."""
from __future__ import annotations

from typing import Callable, Generator, Sequence

import simpy

from . import channels
from .events import Broadcast, Glimpse
from .eye import Eye
from .parts import Area
from .wiring import Edge

Hook = Callable[[Glimpse], None]


class Simulation:
    """Eye -> layer agents -> hooks, over simulated milliseconds."""

    def __init__(self, eye: Eye, agents: Sequence[Area], fixation_ms: float,
                 delays_ms: Sequence[float] = (), start_ms: float = 0.0, edges: Sequence[Edge] = ()) -> None:
        self.env = simpy.Environment(initial_time=start_ms)
        self.eye = eye
        self.agents = list(agents)
        self.fixation_ms = fixation_ms
        self.delays = list(delays_ms) or [0.0] * len(self.agents)
        self.channels = [Broadcast(self.env, "eye")] + [Broadcast(self.env, a.name) for a in self.agents]
        self.subscribes = tuple(getattr(eye.policy, "subscribes", ()))
        if self.subscribes:
            channels.check(self.subscribes, [a.name for a in self.agents], f"eye.policy {type(eye.policy).__name__}")
        self.in_flight = 0  #: dendritic deliveries under way
        self.latest: dict[str, Glimpse] = {}  #: channel name -> its last event (kept only for a subscribing policy)
        self.asynchronous = hasattr(eye, "next_time")  #: eyes on their own clocks (saccade_sim.asynchronous)
        for i, agent in enumerate(self.agents):
            self.env.process(self._agent_process(agent, self.channels[i], self.channels[i + 1], self.delays[i]))
        by_name = {c.name: c for c in self.channels}
        targets = {a.name: a for a in self.agents}
        for edge in edges:
            if edge.kind != "feedforward":
                self.env.process(self._dendritic_process(by_name[edge.source], targets[edge.target], edge))
        self.done = eye.event  # events that every layer has processed
        self.env.process(self._record_done())

    def every(self, n_events: int, fn: Hook, channel: int = -1) -> None:
        """Call ``fn(glimpse)`` on every n-th event of ``channel`` (-1: the last layer's output)."""
        self.env.process(self._hook_process(self.channels[channel], n_events, fn))

    def _agent_process(self, agent: Area, inbox: Broadcast, outbox: Broadcast, delay: float) -> Generator:
        while True:
            glimpse = yield inbox.wait()
            if delay:
                yield self.env.timeout(delay)
            out = agent.step(glimpse)
            if self.subscribes:
                self.latest[agent.name] = out
            outbox.publish(out)

    def _dendritic_process(self, channel: Broadcast, target: Area, edge: Edge) -> Generator:
        """Deliver each output of ``edge.source`` to ``target``'s dendrite, ``edge.delay_ms`` later."""
        while True:
            glimpse = yield channel.wait()
            if edge.delay_ms:
                self.in_flight += 1
                yield self.env.timeout(edge.delay_ms)
                self.in_flight -= 1
            target.dendritic_inputs[edge.source] = glimpse.data

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
            if self.subscribes:  # once the last layer has processed it (inside the event: a checkpoint keeps it)
                self.latest["eye"] = glimpse
                yield self.channels[-1].wait()
                self._observe()

    def _observe(self) -> None:
        """Give the policy the latest tensors of its channels (an area that has published nothing yet is left out)."""
        eye, agents = self.latest["eye"], {a.name: a for a in self.agents}
        seen = {} if eye.eyes is None else {"eyes": eye.eyes}  # asynchronous eyes: which eyes of the batch
        for name in self.subscribes:
            area, _, quantity = name.partition("/")
            if not quantity:  # the stimuli as the eyes see them (through their presentations' views)
                seen[name] = self.eye.seen_stimuli() if name == "stimulus" else getattr(eye, name)
            elif area in self.latest:
                value = self.latest[area].data if quantity == "activity" else agents[area].eye_loss()
                if value is not None:
                    seen[name] = value
        self.eye.policy.observe(seen, eye.gaze)

    def _record_done(self) -> Generator:
        while True:
            self.done = (yield self.channels[-1].wait()).index + 1

    def run(self, events: int, tick: Callable[[], None] = lambda: None,
            stop: Callable[[], bool] = lambda: False) -> int:
        """Simulate up to ``events`` more fixations (fewer if ``stop()`` turns true before one) and let every
        layer process the last one (and every dendritic edge deliver it), so that no event is in flight when this
        returns. Returns how many ran."""
        first = self.eye.event
        self.env.run(until=self.env.process(self._eye_process(events, tick, stop)))
        while self.done < self.eye.event or self.in_flight:
            self.env.step()
        return self.eye.event - first
