"""Drives `sshkeep mcp` with the official MCP Python SDK (an independent client).

Usage: flow1.py SSHKEEP_BINARY CONNECTION_NAME
The environment (SSHKEEP_HOME, HOME, ...) is passed on to the server. Prints one JSON line with
what it saw and exits non-zero if anything is off.
"""

import asyncio
import json
import os
import tempfile
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def attr(obj, snake, camel):
    """The SDK's field, under its 2.x (snake_case) or 1.x (camelCase) name."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def log_lines(result):
    """(n, stream, text) of each "[N STREAM] TEXT" line of a logs reply's text."""
    out = []
    for line in result.content[0].text.splitlines():
        if line.startswith("[") and "] " in line:
            head, text = line[1:].split("] ", 1)
            n, _, stream = head.partition(" ")
            if n.isdigit():
                out.append((int(n), stream, text))
    return out


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def main(binary: str, conn: str) -> dict:
    params = StdioServerParameters(command=binary, args=["mcp"], env=dict(os.environ))
    seen = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            seen["server"] = attr(init, "server_info", "serverInfo").name
            tools = (await session.list_tools()).tools
            names = sorted(t.name for t in tools)
            seen["tools"] = names
            for t in tools:
                check(t.description, f"{t.name} has a description")
                schema = attr(t, "input_schema", "inputSchema")
                check(schema.get("type") == "object", f"{t.name} has an object input schema")

            async def call(name, args):
                r = await session.call_tool(name, args)
                return r, (attr(r, "structured_content", "structuredContent") or {})

            r, s = await call("ssh_exec", {"op": "open", "connectionId": conn})
            check(not attr(r, "is_error", "isError"), f"open failed: {r.content}")
            sid = s["sessionId"]

            async def run_and_wait(command):
                r, s = await call("ssh_exec", {"op": "run", "sessionId": sid, "command": command})
                check(not attr(r, "is_error", "isError"), f"run failed: {r.content}")
                cid = s["commandId"]
                for _ in range(600):
                    r, st = await call("ssh_exec", {"op": "status", "commandId": cid})
                    if st["state"] not in ("queued", "running"):
                        return cid, st
                    await asyncio.sleep(0.1)
                raise AssertionError("command did not finish")

            cid1, st1 = await run_and_wait("echo alpha; echo 'error: disk' >&2")
            check(st1["state"] == "completed" and st1["exitCode"] == 0, f"first command: {st1}")
            cid2, st2 = await run_and_wait(["seq 1 100", "echo done"])
            check(st2["state"] == "completed", f"second command: {st2}")

            # Log lines travel once, in the text, as "[N STREAM] TEXT"; structuredContent counts them.
            r, logs = await call("ssh_exec", {"op": "logs", "commandId": cid2, "tail": 2})
            lines = log_lines(r)
            check([l[2] for l in lines] == ["100", "done"], f"tail: {lines}")
            check(logs["lines"] == 2 and logs["lastLine"] == lines[-1][0], f"counts: {logs}")
            r, logs = await call("ssh_exec", {"op": "logs", "commandId": cid1, "grep": "error"})
            lines = log_lines(r)
            check([l[2] for l in lines] == ["error: disk"], f"grep: {lines}")
            check(lines[0][1] == "stderr", "grep keeps the stream")

            r, _ = await call("ssh_exec", {"op": "status", "commandId": "00000000-0000-0000-0000-000000000000"})
            check(attr(r, "is_error", "isError"), "an unknown commandId is a tool error")

            # A file edit over SFTP, content that a heredoc would break.
            path = os.path.join(tempfile.mkdtemp(prefix="sshkeep-flow1-"), "conf")
            content = "EOF\n'quoted' \"x\" $(id) `id` \\\nno newline"
            r, s = await call("ssh_file", {"op": "write", "connectionId": conn, "path": path, "content": content})
            check(not attr(r, "is_error", "isError"), f"ssh_file write: {r.content}")
            r, s = await call("ssh_file", {"op": "replace", "connectionId": conn, "path": path, "old": "EOF", "new": "END", "expectedCount": 2})
            check(attr(r, "is_error", "isError"), "a wrong expectedCount is a tool error")
            r, s = await call("ssh_file", {"op": "read", "connectionId": conn, "path": path})
            check(s.get("content") == content, f"ssh_file read back: {s}")
            with open(path, "rb") as f:
                check(f.read() == content.encode(), "bytes on disk equal the content")

            # A shell driven step by step.
            r, s = await call("ssh_shell", {"op": "open", "connectionId": conn, "persist": False})
            check(not attr(r, "is_error", "isError"), f"ssh_shell open: {r.content}")
            shell = s["shellId"]
            await call("ssh_shell", {"op": "send", "shellId": shell, "text": "echo sum-$((40+2))", "enter": True})
            r, s = await call("ssh_shell", {"op": "wait", "shellId": shell, "pattern": "sum-42", "timeout": 20})
            check(s.get("matched") is True, f"ssh_shell wait: {s}")
            r, s = await call("ssh_shell", {"op": "close", "shellId": shell})
            check(s.get("state") == "closed", f"ssh_shell close: {s}")

            r, s = await call("ssh_exec", {"op": "close", "sessionId": sid})
            check(not attr(r, "is_error", "isError") and s["closed"], "close")
            seen["flow1"] = "ok"
    return seen


if __name__ == "__main__":
    out = asyncio.run(main(sys.argv[1], sys.argv[2]))
    print(json.dumps(out))
