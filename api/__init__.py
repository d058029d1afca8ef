"""The edge: command line, HTTP API and web page. Only this package speaks JSON, argv and stdout."""
