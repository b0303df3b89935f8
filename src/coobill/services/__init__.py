"""The service layer: every billing operation, called alike by the gate, AMI, portal and CLI."""
