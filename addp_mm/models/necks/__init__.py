from .addp_decoder import ADDPTokenDecoder

__all__ = ['ADDPTokenDecoder']
