"""Belief-graph prompt planning without an LLM (after the proactive text-to-image agents paper).

A dataset's own captions and image-level labels give a *belief graph* of what its images hold:
``lexicon`` (the words read), ``parse`` (captions to mentions), ``stats`` (smoothing, entropy,
PMI), ``graph`` (entities, attributes, relations; JSON), ``build`` (the graph from mentions),
``sources`` (captions files and VOC-layout folders), ``questions`` (which question to ask),
``answers`` (the answer grammar and how an answer pins the belief), ``sampling`` (prompts from the
belief, with counter-bias balancing), ``draw`` (a PNG of the graph) and ``selfplay`` (the
importance-weighted NLL of held-out truth against the number of questions).
"""
