"""What a client is told when a graph's own check refuses its request (an in-graph Assert, e.g.
the projection's step count): the line that says what was wrong, never node names or a stack."""


def graph_error(message: str) -> str:
    """The line of a graph's InvalidArgumentError that says what was wrong: an Assert's own text
    ("steps must be 1..500, got 0"), else the first line; never the node names and stack."""
    for line in message.splitlines():
        if line.startswith("assertion failed: "):
            return " ".join(part.strip("[] ") for part in line.removeprefix("assertion failed: ").split("] ["))[:300]
    return message.splitlines()[0][:300] if message else "invalid argument"
