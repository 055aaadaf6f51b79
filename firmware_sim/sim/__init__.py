"""The fleet simulator: many agents, battery and bus physics, faults and attacks."""
