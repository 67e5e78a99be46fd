from twisted.application.service import ServiceMaker

portaum = ServiceMaker("portaum", "portaum_tx.tap", "Unified messaging server: SIP/RTP IVR, "
                       "voicemail, fax, IMAP/POP3/SMTP and web in one process", "portaum")
