"""Stand-ins for systems that cannot run on these machines, speaking their real protocols."""
