"""CNI front end: the ``contiv`` plugin binary (:mod:`agent.cni.plugin`, standard library only) and
the agent-side verbs it forwards to (:mod:`agent.cni.server`). Keep this file free of imports: the
plugin binary's start-up time depends on it."""
