"""apptool-steering: end-to-end steering after Bojarski et al. 2016 (PilotNet)."""
