"""A local MCP server over stdio (the ``mcp`` package), for the agent's MCP tool test."""

from mcp.server.fastmcp import FastMCP

server = FastMCP("math")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


if __name__ == "__main__":
    server.run(transport="stdio")
