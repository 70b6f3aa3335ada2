from .addp_network import ADDPNetwork, build_network_parts, build_part

__all__ = ['ADDPNetwork', 'build_network_parts', 'build_part']
