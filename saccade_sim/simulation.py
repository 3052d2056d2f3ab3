"""The SimPy wiring, from the network's graph (:mod:`saccade_sim.wiring`). SimPy only orders events: the Eye
process emits one Glimpse per fixation onto a :class:`Broadcast`; each layer agent's process waits on its
feedforward input channel, optionally waits its conduction delay, runs the agent's (pure tensor) step and
publishes the result on its own channel. An area with several feedforward inputs has one process per input edge
that waits on the source's channel and the edge's delay and holds the glimpse until every input of the same event
has arrived; the last one hands the agent's ``join`` of them (channel concatenation, tensor work of the agent) to
the area's process. Each dendritic edge's process waits on its source's channel and, after its delay, hands the
output to its target's dendrite. The network's output (channel -1 of :meth:`Simulation.every`) is its sink's
channel (the chain: the last layer's); with several sinks, an event published once every sink has processed the
event, carrying the output of the last sink (in the order of the areas). Monitors are processes subscribed to any
channel. A saccade policy that ``subscribes`` to channels (:mod:`saccade_sim.channels`) is given their latest
tensors after each event, once every sink has processed it, before the eye samples the next gaze (so a
closed-loop eye's next fixation comes no earlier than the network's answer, and the observation is part of the
event: a checkpoint between events keeps it). Asynchronous eyes
(:mod:`saccade_sim.asynchronous`) set each event's time to the end of the next time bin in which a fixation ends.

SimPy processes are generators and cannot be saved: a checkpoint is taken between :meth:`Simulation.run`
calls, when no event is in flight, and a restored run builds a new Simulation at the saved clock."""
from __future__ import annotations

import functools
from typing import Callable, Generator, Sequence

import simpy

from . import channels
from .events import Broadcast, Glimpse
from .eye import Eye
from .parts import Area
from .wiring import EYE, Edge, chain, feedforward, sinks

Hook = Callable[[Glimpse], None]


class Simulation:
    """Eye -> layer agents -> hooks, over simulated milliseconds. ``edges``: the network's graph
    (:func:`saccade_sim.wiring.network_edges`); without feedforward edges among them, the chain of ``agents``
    with ``delays_ms``."""

    def __init__(self, eye: Eye, agents: Sequence[Area], fixation_ms: float,
                 delays_ms: Sequence[float] = (), start_ms: float = 0.0, edges: Sequence[Edge] = ()) -> None:
        self.env = simpy.Environment(initial_time=start_ms)
        self.eye = eye
        self.agents = list(agents)
        self.fixation_ms = fixation_ms
        names = [a.name for a in self.agents]
        forward = [e for e in edges if e.kind == "feedforward"] or chain(names, list(delays_ms) or [0.0] * len(names))
        self.channels = [Broadcast(self.env, EYE)] + [Broadcast(self.env, a.name) for a in self.agents]
        self.subscribes = tuple(getattr(eye.policy, "subscribes", ()))
        if self.subscribes:
            channels.check(self.subscribes, names, f"eye.policy {type(eye.policy).__name__}")
        self.in_flight = 0  #: dendritic deliveries under way
        self.latest: dict[str, Glimpse] = {}  #: channel name -> its last event (kept only for a subscribing policy)
        self.asynchronous = hasattr(eye, "next_time")  #: eyes on their own clocks (saccade_sim.asynchronous)
        by_name = {c.name: c for c in self.channels}
        for agent, outbox in zip(self.agents, self.channels[1:]):
            inputs = feedforward(forward, agent.name)
            if len(inputs) == 1:
                self.env.process(self._agent_process(agent, by_name[inputs[0].source], outbox, inputs[0].delay_ms))
            else:
                inbox = Broadcast(self.env, f"{agent.name}/input")
                self._gather([(by_name[e.source], e.delay_ms) for e in inputs],
                             functools.partial(self._publish_joined, agent, inbox))
                self.env.process(self._agent_process(agent, inbox, outbox, 0.0))
        targets = {a.name: a for a in self.agents}
        for edge in edges:
            if edge.kind != "feedforward":
                self.env.process(self._dendritic_process(by_name[edge.source], targets[edge.target], edge))
        ends = sinks(forward, names)
        if len(ends) == 1:
            self.output = by_name[ends[0]]  #: the network's output: its events come once every sink has processed one
        else:
            self.output = Broadcast(self.env, "network")
            self._gather([(by_name[end], 0.0) for end in ends], lambda parts: self.output.publish(parts[-1]))
        self.done = eye.event  # events that every layer has processed
        self.env.process(self._record_done())

    def every(self, n_events: int, fn: Hook, channel: int = -1) -> None:
        """Call ``fn(glimpse)`` on every n-th event of ``channel`` (an index into :attr:`channels`, 0: the eye;
        -1: the network's output, :attr:`output`)."""
        self.env.process(self._hook_process(self.output if channel == -1 else self.channels[channel], n_events, fn))

    def _gather(self, inputs: Sequence[tuple[Broadcast, float]], deliver: Callable[[list[Glimpse]], None]) -> None:
        """Start one :meth:`_input_process` per (channel, delay) of ``inputs``; ``deliver`` gets each event's
        glimpses once all have arrived."""
        held: dict[int, dict[int, Glimpse]] = {}
        for slot, (channel, delay) in enumerate(inputs):
            self.env.process(self._input_process(channel, delay, slot, len(inputs), held, deliver))

    @staticmethod
    def _publish_joined(agent: Area, inbox: Broadcast, inputs: list[Glimpse]) -> None:
        inbox.publish(agent.join(inputs))

    def _input_process(self, channel: Broadcast, delay: float, slot: int, n_inputs: int,
                       held: dict[int, dict[int, Glimpse]], deliver: Callable[[list[Glimpse]], None]) -> Generator:
        """Input ``slot`` of ``n_inputs``: hold each glimpse of ``channel``, ``delay`` ms after it was published,
        under its event index; the last of an event to arrive calls ``deliver`` with them in slot order."""
        while True:
            glimpse = yield channel.wait()
            if delay:
                yield self.env.timeout(delay)
            parts = held.setdefault(glimpse.index, {})
            parts[slot] = glimpse
            if len(parts) == n_inputs:
                del held[glimpse.index]
                deliver([parts[k] for k in range(n_inputs)])

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
        channels once every sink has processed fixation k, before fixation k+1 is drawn."""
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
            if self.subscribes:  # once every sink has processed it (inside the event: a checkpoint keeps it)
                self.latest["eye"] = glimpse
                yield self.output.wait()
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
            self.done = (yield self.output.wait()).index + 1

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
