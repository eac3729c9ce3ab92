"""Drives `sshkeep mcp --profile agent` with the official MCP Python SDK: a read runs, a removal
waits for the user's approval, nothing an agent can call approves it, and status says why.

Usage: approval.py SSHKEEP_BINARY CONNECTION_NAME
Prints one JSON line with what it saw; exits non-zero if anything is off.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def main(binary, conn):
    params = StdioServerParameters(
        command=binary, args=["mcp", "--profile", "agent"], env=dict(os.environ)
    )
    seen = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()

            async def call(name, arguments):
                r = await session.call_tool(name, arguments)
                err = getattr(r, "is_error", None)
                err = getattr(r, "isError", False) if err is None else err
                data = getattr(r, "structured_content", None) or getattr(r, "structuredContent", None) or {}
                return bool(err), " ".join(getattr(c, "text", "") for c in r.content), data

            e, t, s = await call("ssh_server_status", {})
            check(not e and "agent" in t, f"status names the profile: {t}")
            e, t, s = await call("ssh_exec", {"op": "run", "connectionId": conn, "command": "uname -s"})
            check(not e and s.get("state") != "awaiting_approval", f"a read runs: {t}")
            e, t, s = await call("ssh_exec", {"op": "run", "connectionId": conn,
                                              "command": "echo x | xargs rm -f"})
            check(not e and s.get("state") == "awaiting_approval", f"rm waits: {t}")
            check("sshkeep approve" in t, f"says how the user approves: {t}")
            held = s["commandId"]
            for args in ({"op": "approve", "commandId": held},):
                e, t, _ = await call("ssh_exec", args)
                check(e, f"an agent approved its own request: {t}")
            e, t, s = await call("ssh_exec", {"op": "status", "commandId": held})
            check(not e and s.get("state") == "awaiting_approval", f"still waits: {t}")
            seen["approval"] = "held"
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
