"""FaxCallSession over a fake RTP session, a fake UDPTL port and fake signalling, on a
task.Clock, with spandsp (tests.fax.faxpeer) as the calling machine."""

import os
import random
import types

import numpy as np
from twisted.internet import task
from twisted.trial import unittest

from portaum_tx.fax import spandsp
from portaum_tx.fax.call import (
    FAX_JITTER_FRAMES, MAX_UDPTL_DATAGRAM, FaxCallSession, FaxSettings, FaxUnavailableOnCall, UdptlPort,
    fax_channel_for, t38_params_from_sdp,
)
from portaum_tx.fax.t38sdp import EC_FEC, EC_NONE, EC_REDUNDANCY, RATE_LOCAL_TCF
from portaum_tx.rtp.session import MediaParams
from portaum_tx.sip.sdp import T38Params as SdpT38Params
from tests.fax.faxpeer import (
    AudioSender, FakeUdptlLink, T38Sender, dense_page, page_similarity, text_page,
    ulaw_round_trip, write_document,
)

FAR_END = ("127.0.0.1", 40000)


def spandsp_missing():
    try:
        spandsp.load_library()
    except spandsp.FaxUnavailable as e:
        return str(e)
    return None


class FakeMediaClock:
    def __init__(self, clock):
        self.clock = clock
        self.hooks = []

    def add_tick_hook(self, hook):
        self.hooks.append(hook)

    def remove_tick_hook(self, hook):
        if hook in self.hooks:
            self.hooks.remove(hook)


class FakeRtp:
    """What FaxCallSession uses of an RtpSession."""

    def __init__(self, clock):
        self.media_clock = FakeMediaClock(clock)
        self.fax_detection = True
        self.inband_choice = "default"
        self.consumers = []
        self.source = None
        self.closed = False
        self.params = MediaParams(remote_address=("127.0.0.1", 4000)).validated()

    def set_inband_dtmf(self, enabled):
        self.inband_choice = enabled

    def set_fax_detection(self, enabled):
        self.fax_detection = enabled

    def add_consumer(self, consumer):
        self.consumers.append(consumer)

    def remove_consumer(self, consumer):
        if consumer in self.consumers:
            self.consumers.remove(consumer)

    def set_source(self, source):
        self.source = source

    def clear_source(self, source):
        if self.source is source:
            self.source = None

    def configure(self, params):
        self.params = params


class FakePortTransport:
    def __init__(self):
        self.sent = []
        self.stopped = False
        self.deliver = None

    def write(self, data, addr):
        self.sent.append((data, addr))
        if self.deliver is not None:
            self.deliver(data)

    def stopListening(self):
        self.stopped = True


class FakeAllocator:
    def __init__(self, port=30000):
        self.port = port
        self.transports = []

    def bind(self, session):
        rtp, rtcp = FakePortTransport(), FakePortTransport()
        self.transports += [rtp, rtcp]
        session.attach_transports(rtp, rtcp, self.port)
        return self.port


class FakeSignalling:
    def __init__(self, accept_request=True, params=None):
        self.accept_request = accept_request
        self.listeners = []
        self.port = None
        self.requests = 0
        self.closed = False
        self.stream = types.SimpleNamespace(remote_address=FAR_END[0], remote_port=FAR_END[1],
                                            t38=params or SdpT38Params())

    def accept(self, port):
        self.port = port

    async def request(self):
        self.requests += 1
        if not self.accept_request:
            return False
        self.offer()
        return True

    def offer(self, stream=None):
        for listener in list(self.listeners):
            listener(stream or self.stream)

    def close(self):
        self.closed = True


class FaxCallSessionCase(unittest.TestCase):
    def setUp(self):
        missing = spandsp_missing()
        if missing:
            raise unittest.SkipTest(missing)
        self.clock = task.Clock()
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.source = os.path.join(self.dir, "source.tif")
        self.pages = write_document(self.source, pages=[text_page(500), dense_page(200)])
        self.rtp = FakeRtp(self.clock)
        self.allocator = FakeAllocator()
        self.ticks = 0

    def session(self, signalling=None, **settings):
        settings.setdefault("local_ident", "PORTAUM")
        fax = FaxCallSession(self.clock, self.rtp, FaxSettings(**settings), self.dir,
                             allocator=self.allocator, signalling=signalling)
        self.results = []
        fax.start().addCallback(self.results.append)
        return fax

    def connect_t38(self, fax, ecm=True, loss=0.0, seed=3):
        """spandsp's T.38 terminal on the far side of the session's UDPTL port."""
        to_receiver = FakeUdptlLink(lambda d: fax.udptl.rtp_received(d, FAR_END), loss=loss,
                                    seed=seed)
        sender = T38Sender(self.source, to_receiver.send, ecm=ecm)
        self.addCleanup(sender.close)
        to_sender = FakeUdptlLink(sender.feed_udptl, loss=loss, seed=seed + 1)
        fax.udptl._transports[0].deliver = to_sender.send
        return sender, to_receiver, to_sender

    def drive(self, fax, t38=None, audio=None, max_seconds=300, on_tick=None):
        """Tick the call: the far end's audio through the RTP consumer/source while the
        session is on G.711, UDPTL links and the T.38 sender once connected."""
        heard = np.zeros(160, dtype=np.int16)
        while not self.results and self.ticks < max_seconds * 50:
            self.ticks += 1
            if audio is not None and self.rtp.consumers:
                line = ulaw_round_trip(audio.step(ulaw_round_trip(heard)))
                for consumer in list(self.rtp.consumers):
                    consumer.inbound_frame(self.rtp, line, 0)
            for hook in list(self.rtp.media_clock.hooks):
                hook(self.ticks)
            if self.rtp.source is not None:
                heard = self.rtp.source.next_frame(self.rtp)
            if t38 is not None and t38[0] is not None:
                sender, to_receiver, to_sender = t38
                to_receiver.tick()
                to_sender.tick()
                sender.tick()
            self.clock.advance(0.02)
            if on_tick is not None:
                on_tick(self.ticks)
        return self.results[0] if self.results else None

    def assertReceived(self, result, pages=2):
        self.assertIsNotNone(result, "the fax never ended")
        self.assertTrue(result.complete, result.completion_text)
        self.assertEqual(result.pages, pages)
        from PIL import Image
        image = Image.open(result.tiff_path)
        for index, source in enumerate(self.pages[:pages]):
            image.seek(index)
            self.assertGreater(page_similarity(image.copy(), source), 0.98)

    def assertReleased(self, fax):
        self.assertEqual(self.rtp.media_clock.hooks, [])
        self.assertEqual(self.rtp.consumers, [])
        self.assertIsNone(self.rtp.source)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        if fax.udptl is not None:
            self.assertTrue(all(t.stopped for t in self.allocator.transports))
            self.assertTrue(fax.signalling.closed)


class T38SwitchTests(FaxCallSessionCase):
    def test_our_reinvite_accepted_fax_over_udptl(self):
        signalling = FakeSignalling()
        fax = self.session(signalling)
        self.assertEqual(signalling.port, 30000)
        self.assertEqual(fax.mode, "audio")
        self.clock.advance(0)       # the re-INVITE goes out at once
        self.assertEqual(signalling.requests, 1)
        self.assertEqual(fax.mode, "t38")
        # RTP goes quiet: nothing sent, no dead-peer alarm from its silence.
        self.assertEqual(self.rtp.params.direction, "inactive")
        self.assertEqual(self.rtp.consumers, [])
        result = self.drive(fax, t38=self.connect_t38(fax))
        self.assertReceived(result)
        self.assertEqual(result.mode, "t38")
        self.assertEqual(result.remote_ident, "+1 555 0100")
        self.assertTrue(self.rtp.fax_detection)          # restored for the rest of the call
        self.assertIsNone(self.rtp.inband_choice)
        self.assertReleased(fax)
        # The superseded audio receiver left no file behind.
        self.assertEqual(sorted(os.listdir(self.dir)), ["received-t38-1.tif", "source.tif"])

    def test_far_end_reinvites_to_t38(self):
        signalling = FakeSignalling()
        fax = self.session(signalling, t38_request=False)
        audio = AudioSender(self.source)
        self.addCleanup(audio.close)
        link = [None, None, None]

        def reinvite(tick):
            if tick == 100:
                signalling.offer()
                link[:] = self.connect_t38(fax)

        result = self.drive(fax, t38=link, audio=audio, on_tick=reinvite)
        self.assertEqual(signalling.requests, 0)
        self.assertReceived(result)
        self.assertEqual(result.mode, "t38")
        self.assertReleased(fax)

    def test_reinvite_storm_switches_once_and_follows_the_address(self):
        signalling = FakeSignalling()
        fax = self.session(signalling)
        self.clock.advance(0)
        receiver = fax.receiver
        for port in range(40000, 40050):
            signalling.offer(types.SimpleNamespace(remote_address="127.0.0.1", remote_port=port,
                                                   t38=SdpT38Params()))
        self.assertIs(fax.receiver, receiver)
        self.assertEqual(fax.switches, 1)
        self.assertEqual(fax.udptl.remote_address, ("127.0.0.1", 40049))
        signalling.offer()
        result = self.drive(fax, t38=self.connect_t38(fax))
        self.assertReceived(result)

    def test_refused_t38_stays_on_g711(self):
        signalling = FakeSignalling(accept_request=False)
        fax = self.session(signalling)
        self.assertFalse(self.rtp.fax_detection)      # pass-through: no detector on the fax
        self.assertFalse(self.rtp.inband_choice)
        audio = AudioSender(self.source, ecm=False)
        self.addCleanup(audio.close)
        result = self.drive(fax, audio=audio)
        self.assertTrue(fax.t38_refused)
        self.assertReceived(result)
        self.assertEqual(result.mode, "audio")
        self.assertEqual(self.rtp.params.direction, "sendrecv")
        self.assertReleased(fax)

    def test_g711_plays_out_through_a_deep_buffer_that_never_drops(self):
        from portaum_tx.rtp.codecs import PCMU
        from portaum_tx.rtp.jitter import JitterBuffer
        voice = self.rtp.jitter = JitterBuffer(PCMU.silence_byte)
        self.rtp.codec = PCMU
        fax = self.session(None)
        fax_jitter = self.rtp.jitter
        self.assertIsNot(fax_jitter, voice)
        self.assertEqual(fax_jitter.depth_frames, FAX_JITTER_FRAMES)
        # A sender running fast keeps the buffer full: voice would drop a frame, fax not.
        for frame in range(3000):
            fax_jitter.push(frame * 160, bytes([frame % 200]) * 160)
            if frame % 2 == 0 or frame > 20:
                fax_jitter.pop()
        self.assertEqual(fax_jitter.dropped_frames, 0)
        audio = AudioSender(self.source)
        self.addCleanup(audio.close)
        self.assertReceived(self.drive(fax, audio=audio))
        self.assertIs(self.rtp.jitter, voice)

    def test_t38_off_never_binds_a_port(self):
        signalling = FakeSignalling()
        fax = self.session(signalling, t38=False)
        self.assertIsNone(fax.udptl)
        self.assertEqual(self.allocator.transports, [])
        audio = AudioSender(self.source)
        self.addCleanup(audio.close)
        self.assertReceived(self.drive(fax, audio=audio))
        self.assertEqual(signalling.requests, 0)

    def test_no_port_left_falls_back_to_g711(self):
        class Exhausted:
            def bind(self, session):
                raise RuntimeError("no free RTP/RTCP port pair in 30000-30001")

        self.allocator = Exhausted()
        signalling = FakeSignalling()
        fax = self.session(signalling)
        self.assertIsNone(fax.udptl)
        audio = AudioSender(self.source)
        self.addCleanup(audio.close)
        self.assertReceived(self.drive(fax, audio=audio))


class BadInputTests(FaxCallSessionCase):
    def test_garbage_udptl_mid_fax_is_dropped_and_the_fax_completes(self):
        signalling = FakeSignalling()
        fax = self.session(signalling)
        self.clock.advance(0)
        link = self.connect_t38(fax, loss=0.02)
        rng = random.Random(5)

        def garbage(tick):
            if tick % 25 == 0:
                size = rng.choice([0, 1, 3, 17, 200, MAX_UDPTL_DATAGRAM + 1])
                fax.udptl.rtp_received(bytes(rng.getrandbits(8) for _ in range(size)), FAR_END)
                # and some from a stranger, which never reach the receiver
                fax.udptl.rtp_received(b"\x00\x00\x06\xd0\x00", ("192.0.2.9", 5000))

        result = self.drive(fax, t38=link, on_tick=garbage)
        self.assertReceived(result)
        self.assertGreater(fax.udptl.dropped, 0)

    def test_hang_up_mid_page_delivers_the_pages_received(self):
        signalling = FakeSignalling()
        fax = self.session(signalling, ecm=False)
        self.clock.advance(0)
        sender, to_receiver, to_sender = link = self.connect_t38(fax, ecm=False)
        state = {}

        def hang_up_in_page_two(tick):
            if sender.pages_sent == 1 and "cut" not in state:
                state["cut"] = tick
            if "cut" in state and tick == state["cut"] + 100:
                to_receiver.cut = True
                fax.stop()

        result = self.drive(fax, t38=link, on_tick=hang_up_in_page_two)
        self.assertFalse(result.complete)
        self.assertEqual(result.pages, 1)
        self.assertIn("call hung up", result.completion_text)
        self.assertIsNotNone(result.tiff_path)
        self.assertReleased(fax)

    def test_sender_silent_in_phase_c_ends_by_itself(self):
        signalling = FakeSignalling()
        fax = self.session(signalling, ecm=False)
        self.clock.advance(0)
        sender, to_receiver, to_sender = link = self.connect_t38(fax, ecm=False)

        def go_silent(tick):
            if sender.pages_sent == 1 and not to_receiver.cut:
                to_receiver.cut = True
                sender.stop()

        result = self.drive(fax, t38=link, on_tick=go_silent)
        self.assertIsNotNone(result, "a silent sender must not hold the call")
        self.assertFalse(result.complete)
        self.assertEqual(result.pages, 1)
        self.assertReleased(fax)


class UdptlPortTests(unittest.TestCase):
    def setUp(self):
        self.got = []
        self.allocator = FakeAllocator(port=31000)
        self.port = UdptlPort(self.allocator, self.got.append)

    def test_nothing_before_the_far_end_is_known(self):
        self.port.rtp_received(b"\x00\x00\x00", FAR_END)
        self.port.send(b"x")
        self.assertEqual((self.got, self.port.dropped), ([], 1))
        self.assertEqual(self.allocator.transports[0].sent, [])

    def test_latches_the_first_source_on_the_negotiated_host(self):
        self.port.set_remote("127.0.0.1", 40000)
        self.port.rtp_received(b"a", ("127.0.0.1", 40002))     # NAT moved the port
        self.port.rtp_received(b"b", ("127.0.0.1", 40000))     # the old port: not the peer now
        self.port.rtp_received(b"c", ("198.51.100.1", 40002))  # another host
        self.port.rtp_received(b"d" * (MAX_UDPTL_DATAGRAM + 1), ("127.0.0.1", 40002))
        self.assertEqual(self.got, [b"a"])
        self.assertEqual(self.port.dropped, 3)
        self.port.send(b"out")
        self.assertEqual(self.allocator.transports[0].sent, [(b"out", ("127.0.0.1", 40002))])

    def test_a_new_address_from_signalling_unlatches(self):
        self.port.set_remote("127.0.0.1", 40000)
        self.port.rtp_received(b"a", ("127.0.0.1", 40000))
        self.port.set_remote("127.0.0.1", 41000)
        self.port.rtp_received(b"b", ("127.0.0.1", 41000))
        self.assertEqual(self.got, [b"a", b"b"])

    def test_host_names_refused(self):
        with self.assertRaises(FaxUnavailableOnCall) as caught:
            self.port.set_remote("fax.example.net", 40000)
        self.assertIn("fax.example.net", str(caught.exception))

    def test_close_releases_both_ports_once(self):
        self.port.close()
        self.port.close()
        self.assertTrue(all(t.stopped for t in self.allocator.transports))
        self.port.set_remote("127.0.0.1", 40000)
        self.port.rtp_received(b"a", FAR_END)
        self.assertEqual(self.got, [])


class SdpParamsTests(unittest.TestCase):
    def test_conversion(self):
        params = t38_params_from_sdp(SdpT38Params(
            version=1, max_bit_rate=9600, rate_management="LocalTCF", max_buffer=None,
            max_datagram=272, udp_ec="t38UDPFEC"))
        self.assertEqual((params.version, params.max_bit_rate, params.rate_management,
                          params.max_buffer, params.max_datagram, params.error_correction),
                         (1, 9600, RATE_LOCAL_TCF, 2000, 272, EC_FEC))

    def test_defaults_and_bounds(self):
        params = t38_params_from_sdp(SdpT38Params(max_datagram=None, udp_ec=None))
        self.assertEqual((params.max_datagram, params.error_correction), (400, EC_REDUNDANCY))
        self.assertEqual(t38_params_from_sdp(SdpT38Params(max_datagram=20)).max_datagram, 100)
        self.assertEqual(t38_params_from_sdp(SdpT38Params(max_datagram=60000)).max_datagram,
                         MAX_UDPTL_DATAGRAM)
        self.assertEqual(t38_params_from_sdp(SdpT38Params(udp_ec="t38UDPNoEC")).error_correction,
                         EC_NONE)


class ChannelTests(unittest.TestCase):
    def test_sip_call_shape(self):
        rtp = FakeRtp(task.Clock())
        invite = types.SimpleNamespace(reoffer=None, t38_port=None, on_media=[],
                                       call_id="c1", is_ended=False)
        allocator = FakeAllocator()
        call = types.SimpleNamespace(session=rtp, sip=invite,
                                     ua=types.SimpleNamespace(media=types.SimpleNamespace(
                                         allocator=allocator)))
        found_rtp, found_allocator, signalling = fax_channel_for(call)
        self.assertIs(found_rtp, rtp)
        self.assertIs(found_allocator, allocator)
        signalling.accept(30000)
        self.assertEqual(invite.t38_port, 30000)
        signalling.close()
        self.assertIsNone(invite.t38_port)
        self.assertEqual(invite.on_media, [])

    def test_no_rtp(self):
        with self.assertRaises(FaxUnavailableOnCall):
            fax_channel_for(types.SimpleNamespace())


class GarbageFuzzTests(unittest.TestCase):
    """Whatever arrives on the UDPTL port, the call ends cleanly: no exception escapes
    to the reactor, the fax reports its end, the port and the tick hook are released."""

    def setUp(self):
        missing = spandsp_missing()
        if missing:
            raise unittest.SkipTest(missing)

    def test_arbitrary_datagrams(self):
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        @settings(max_examples=25, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(st.lists(st.binary(max_size=300), max_size=40))
        def check(datagrams):
            clock = task.Clock()
            rtp = FakeRtp(clock)
            allocator = FakeAllocator()
            directory = self.mktemp()
            os.makedirs(directory)
            fax = FaxCallSession(clock, rtp, FaxSettings(), directory, allocator=allocator,
                                 signalling=FakeSignalling())
            results = []
            fax.start().addCallback(results.append)
            clock.advance(0)
            self.assertEqual(fax.mode, "t38")
            for tick, datagram in enumerate(datagrams):
                fax.udptl.rtp_received(datagram, FAR_END)
                for hook in list(rtp.media_clock.hooks):
                    hook(tick)
                clock.advance(0.02)
            fax.stop()
            (result,) = results
            self.assertFalse(result.complete)
            self.assertEqual(rtp.media_clock.hooks, [])
            self.assertTrue(all(t.stopped for t in allocator.transports))
            self.assertEqual(clock.getDelayedCalls(), [])

        check()
