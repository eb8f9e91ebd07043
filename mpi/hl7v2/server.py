"""The MLLP listener: a thin asyncio shell around the sans-I/O framer and the HL7 application.

Each connection feeds the bytes it reads to its own :class:`MLLPDecoder` and
answers each complete frame, in order, on the same connection; the
application runs in a thread pool (it talks to the database), so one slow
message never stalls the event loop or the other connections. What the
framer reports is answered too: an oversized or truncated frame gets an AR
naming the message when its MSH can be read; bytes between frames are skipped.
A connection silent for ``idle_timeout_seconds`` is closed (the sender
reopens one when it has something to send).

Shutdown (SIGTERM or SIGINT) stops accepting, lets every message being
processed finish and its answer go out, then closes the connections; after
``shutdown_grace_seconds`` whatever is left is cancelled (its transaction, if
any, is rolled back, and its sender, having no answer, will resend).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mpi.errors import HL7Error, ListenError
from mpi.hl7v2.codes import ErrorCode
from mpi.hl7v2.config import ListenerConfig, TlsConfig
from mpi.hl7v2.framing import (
    END_BLOCK,
    START_BLOCK,
    Frame,
    FrameEvent,
    GarbageSkipped,
    MLLPDecoder,
    OversizedFrame,
    TruncatedFrame,
    frame,
)

log = logging.getLogger("mpi.hl7v2.server")

Handler = Callable[[bytes], bytes]
Refusal = Callable[[bytes, HL7Error], bytes]
_READ_SIZE = 65536
# On a socket shared by several processes, how long a process waits per connection it already
# serves before it takes a new one (an idle process takes it first).
_YIELD_PER_CONNECTION = 0.002
_MAX_YIELD = 0.1  # a busy process still accepts within a tenth of a second


def server_tls_context(tls: TlsConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.certificate, tls.private_key)
    if tls.client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(tls.client_ca)
    return context


def _framed(answer: bytes) -> bytes:
    # A payload cannot hold the framing bytes (the decoder splits on them), so neither can
    # an answer echoing it; strip them anyway rather than ever send a broken frame.
    return frame(answer.replace(START_BLOCK, b"").replace(END_BLOCK, b""))


class MLLPServer:
    """Serves MLLP on one address until :meth:`stop`."""

    def __init__(
        self,
        config: ListenerConfig,
        handle: Handler,
        refuse: Refusal,
        executor: ThreadPoolExecutor,
    ) -> None:
        self._config = config
        self._handle = handle
        self._refuse = refuse
        self._executor = executor
        self._server: asyncio.Server | None = None
        self._shared: socket.socket | None = None  # a listening socket other processes accept on too
        self._accepting: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._connections: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(config.max_connections)

    @property
    def port(self) -> int:
        """The port listened on (useful when the configuration asked for port 0)."""
        if self._shared is not None:
            return int(self._shared.getsockname()[1])
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on the configured address, or accept on ``sock`` (shared by several processes)."""
        tls = server_tls_context(self._config.tls) if self._config.tls is not None else None
        if sock is not None:
            sock.setblocking(False)
            self._shared = sock
            self._accepting = asyncio.create_task(self._accept_shared(sock, tls))
            return
        try:
            self._server = await asyncio.start_server(
                self._accept, self._config.host, self._config.port, ssl=tls, limit=_READ_SIZE
            )
        except OSError as exc:
            raise ListenError(self._config.host, self._config.port, exc) from exc

    async def _accept_shared(self, sock: socket.socket, tls: ssl.SSLContext | None) -> None:
        """Accept connections one at a time on a socket other server processes accept on too.

        Every process waiting on the socket wakes for a new connection and one of them gets it.
        A process already serving connections waits a moment before it tries, so an idle one
        takes it: connections spread over the processes instead of piling onto the first.
        (asyncio's own server would accept a whole burst of connections at once.)
        """
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            if self._connections:
                await asyncio.sleep(min(_YIELD_PER_CONNECTION * len(self._connections), _MAX_YIELD))
            try:
                connection, _ = await loop.sock_accept(sock)
            except OSError as exc:  # out of file descriptors, say: the next try may succeed
                log.warning("accepting a connection failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            # Its TLS handshake runs on its own, so a slow client never holds up the others.
            task = asyncio.create_task(self._open(connection, tls))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _open(self, connection: socket.socket, tls: ssl.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_READ_SIZE)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, connection, ssl=tls)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.info("connection refused during its set-up: %s", exc)
            connection.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await self._accept(reader, writer)

    async def stop(self) -> None:
        """Stop accepting, let in-flight messages finish, then close every connection."""
        if self._server is None and self._accepting is None:
            return
        self._stopping.set()
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        if self._server is not None:
            self._server.close()
        pending = set(self._connections)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self._config.shutdown_grace_seconds)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            if self._slots.locked():
                log.warning(
                    "connection from %s refused: %d connections open", _peer(writer), len(self._connections)
                )
                return
            async with self._slots:
                await self._serve(reader, writer)
        except (ConnectionError, ssl.SSLError, TimeoutError) as exc:
            log.info("connection from %s ended: %s", _peer(writer), exc)
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = MLLPDecoder(self._config.max_message_bytes)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                read = asyncio.ensure_future(reader.read(_READ_SIZE))
                done, _ = await asyncio.wait(
                    {read, stop},
                    timeout=self._config.idle_timeout_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if read not in done:
                    read.cancel()
                    if not done:
                        log.info("closing idle connection from %s", _peer(writer))
                    return
                data = read.result()
                if not data:
                    if decoder.pending_bytes:
                        log.info("connection from %s closed inside a frame", _peer(writer))
                    return
                for event in decoder.feed(data):
                    answer = await self._answer(event)
                    if answer:
                        writer.write(_framed(answer))
                        await writer.drain()
        finally:
            stop.cancel()

    async def _answer(self, event: FrameEvent) -> bytes:
        loop = asyncio.get_running_loop()
        match event:
            case Frame(payload=payload):
                return await loop.run_in_executor(self._executor, self._handle, payload)
            case OversizedFrame(head=head, limit=limit):
                error = HL7Error(
                    f"the message is larger than {limit} bytes",
                    code=ErrorCode.APPLICATION_INTERNAL_ERROR,
                    reject=True,
                )
                return await loop.run_in_executor(self._executor, self._refuse, head, error)
            case TruncatedFrame(payload=payload):
                error = HL7Error(
                    "the frame was cut short by the start of another one; send the message again",
                    code=ErrorCode.SEGMENT_SEQUENCE_ERROR,
                    reject=True,
                )
                return await loop.run_in_executor(self._executor, self._refuse, payload, error)
            case GarbageSkipped(offset=offset):
                log.info("skipped bytes outside any frame at offset %d", offset)
                return b""
        return b""


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


def install_stop_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGTERM and SIGINT."""
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
