"""Drives `sshkeep mcp --http` with the official MCP Python SDK's Streamable HTTP client.

Usage: streamable_http.py URL CONNECTION_NAME, with the bearer tokens in SSHKEEP_TEST_TOKEN_FULL (a token
for profile `unrestricted`) and SSHKEEP_TEST_TOKEN_RO (for `readonly`). Prints one JSON line with
what it saw and exits non-zero if anything is off.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def attr(obj, snake, camel):
    """The SDK's field, under its 2.x (snake_case) or 1.x (camelCase) name."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def with_session(url, token, work):
    headers = {"Authorization": f"Bearer {token}"}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                return await work(session, init)


async def call(session, name, args):
    r = await session.call_tool(name, args)
    text = "\n".join(c.text for c in r.content if hasattr(c, "text"))
    return attr(r, "is_error", "isError"), text, (attr(r, "structured_content", "structuredContent") or {})


async def main(url, conn):
    seen = {}

    async def full(session, init):
        seen["server"] = attr(init, "server_info", "serverInfo").name
        seen["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
        _, text, _ = await call(session, "ssh_server_status", {})
        check("profile 'unrestricted'" in text, f"status under the full token: {text}")
        err, text, s = await call(
            session, "ssh_exec", {"op": "run", "connectionId": conn, "command": "echo http-$((6*7))"}
        )
        check(not err, f"run: {text}")
        cid = s["commandId"]
        for _ in range(600):
            _, _, st = await call(session, "ssh_exec", {"op": "status", "commandId": cid})
            if st["state"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.1)
        check(st["state"] == "completed" and st["exitCode"] == 0, f"echo: {st}")
        _, text, _ = await call(session, "ssh_exec", {"op": "logs", "commandId": cid})
        check("http-42" in text, f"logs: {text}")
        seen["echo"] = st["state"]

    async def readonly(session, init):
        _, text, _ = await call(session, "ssh_server_status", {})
        check("profile 'readonly'" in text, f"status under the readonly token: {text}")
        err, text, _ = await call(
            session, "ssh_exec", {"op": "run", "connectionId": conn, "command": "rm -f /tmp/x"}
        )
        check(err and "refused" in text, f"rm under readonly: {text}")
        seen["readonly_rm"] = "refused"

    await with_session(url, os.environ["SSHKEEP_TEST_TOKEN_FULL"], full)
    await with_session(url, os.environ["SSHKEEP_TEST_TOKEN_RO"], readonly)
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
