"""T.38 session parameters as carried in SDP (ITU-T T.38 Annex D, RFC 3362 image/t38).

Pure: the SIP layer hands over the a= lines of an image/t38 media section and
gets back the parameters to answer with and to configure the UDPTL framing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

RATE_TRANSFERRED_TCF = "transferredTCF"
RATE_LOCAL_TCF = "localTCF"
EC_REDUNDANCY = "t38UDPRedundancy"
EC_FEC = "t38UDPFEC"
EC_NONE = "t38UDPNoEC"

_BIT_RATES = (2400, 4800, 7200, 9600, 12000, 14400, 33600)


class T38ParameterError(ValueError):
    """An SDP T.38 attribute has a value that cannot be used."""


@dataclass(frozen=True)
class T38Params:
    version: int = 0
    max_bit_rate: int = 14400
    rate_management: str = RATE_TRANSFERRED_TCF
    max_buffer: int = 2000
    # The largest UDPTL datagram the declaring side accepts.
    max_datagram: int = 400
    error_correction: str = EC_REDUNDANCY
    fill_bit_removal: bool = False
    transcoding_mmr: bool = False
    transcoding_jbig: bool = False

    @property
    def udptl_mode(self) -> str:
        """The UdptlSender mode matching error_correction."""
        return "fec" if self.error_correction == EC_FEC else "redundancy"

    @property
    def udptl_redundancy(self) -> int:
        return 0 if self.error_correction == EC_NONE else 3


def _integer(name: str, value: str | None, low: int, high: int) -> int:
    try:
        number = int((value or "").strip())
    except ValueError:
        raise T38ParameterError(f"{name} needs an integer, got {value!r}") from None
    if not low <= number <= high:
        raise T38ParameterError(f"{name} {number} out of range {low}..{high}")
    return number


def _flag(name: str, value: str | None) -> bool:
    # Both "a=T38FaxFillBitRemoval" and "a=T38FaxFillBitRemoval:1" appear in the wild.
    if value is None or value.strip() == "":
        return True
    if value.strip() in ("0", "1"):
        return value.strip() == "1"
    raise T38ParameterError(f"{name} must be a flag or 0/1, got {value!r}")


def parse_t38_attributes(attributes) -> T38Params:
    """From (name, value-or-None) pairs of one image/t38 media section.

    Unknown attributes are ignored (they belong to other layers); names compare
    case-insensitively as many gateways vary the case.
    """
    params = T38Params(version=0, max_bit_rate=14400, max_buffer=2000, max_datagram=400)
    fields = {}
    for name, value in attributes:
        key = name.strip().lower()
        if key == "t38faxversion":
            fields["version"] = _integer(name, value, 0, 255)
        elif key == "t38maxbitrate":
            fields["max_bit_rate"] = _integer(name, value, 300, 1_000_000)
        elif key == "t38faxratemanagement":
            text = (value or "").strip()
            known = {RATE_TRANSFERRED_TCF.lower(): RATE_TRANSFERRED_TCF,
                     RATE_LOCAL_TCF.lower(): RATE_LOCAL_TCF}
            if text.lower() not in known:
                raise T38ParameterError(f"unknown T38FaxRateManagement {value!r}")
            fields["rate_management"] = known[text.lower()]
        elif key == "t38faxmaxbuffer":
            fields["max_buffer"] = _integer(name, value, 1, 1_000_000)
        elif key == "t38faxmaxdatagram":
            fields["max_datagram"] = _integer(name, value, 1, 65507)
        elif key == "t38faxudpec":
            text = (value or "").strip()
            known = {e.lower(): e for e in (EC_REDUNDANCY, EC_FEC, EC_NONE)}
            if text.lower() not in known:
                raise T38ParameterError(f"unknown T38FaxUdpEC {value!r}")
            fields["error_correction"] = known[text.lower()]
        elif key == "t38faxfillbitremoval":
            fields["fill_bit_removal"] = _flag(name, value)
        elif key == "t38faxtranscodingmmr":
            fields["transcoding_mmr"] = _flag(name, value)
        elif key == "t38faxtranscodingjbig":
            fields["transcoding_jbig"] = _flag(name, value)
    return replace(params, **fields)


def t38_attributes(params: T38Params) -> list[str]:
    """The a= attribute values (without "a=") describing `params`."""
    lines = [f"T38FaxVersion:{params.version}",
             f"T38MaxBitRate:{params.max_bit_rate}"]
    if params.fill_bit_removal:
        lines.append("T38FaxFillBitRemoval")
    if params.transcoding_mmr:
        lines.append("T38FaxTranscodingMMR")
    if params.transcoding_jbig:
        lines.append("T38FaxTranscodingJBIG")
    lines += [f"T38FaxRateManagement:{params.rate_management}",
              f"T38FaxMaxBuffer:{params.max_buffer}",
              f"T38FaxMaxDatagram:{params.max_datagram}",
              f"T38FaxUdpEC:{params.error_correction}"]
    return lines


def answer_t38(offer: T38Params, local: T38Params = T38Params()) -> T38Params:
    """Our answer to an offer (T.38 Annex D negotiation rules).

    Version and bit rate never exceed the offer; options we do not implement
    (fill bit removal, MMR/JBIG transcoding) are declined; rate management and
    error correction follow the offer, since spandsp and our UDPTL do all of them.
    max_datagram/max_buffer stay ours: they describe what we can receive.
    """
    bit_rate = min(offer.max_bit_rate, local.max_bit_rate)
    bit_rate = max((r for r in _BIT_RATES if r <= bit_rate), default=2400)
    return replace(local,
                   version=min(offer.version, local.version),
                   max_bit_rate=bit_rate,
                   rate_management=offer.rate_management,
                   error_correction=offer.error_correction,
                   fill_bit_removal=False, transcoding_mmr=False, transcoding_jbig=False)
