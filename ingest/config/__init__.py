"""Configuration: strict, frozen pydantic models and the loaders that read them from JSON files.

Unknown keys are errors; every error names the file, the key, what was expected and what
was found. Secrets come only from the environment (TCPD_DATABASE_URL, each venue's
<VENUE>_API_* variables).
"""

from ingest.config.database import DatabaseFile, DatabaseSettings, TableNames, WriterSettings
from ingest.config.errors import ConfigFileError, Problem
from ingest.config.exchange import (
    ConnectionSettings,
    DataCollectionSettings,
    ExchangeFile,
    TradingPair,
)
from ingest.config.loader import (
    load_database_file,
    load_exchange_file,
    load_logging_file,
    parse_exchange_file,
)
from ingest.config.logging_file import ComponentLevels, LoggingFile
from ingest.config.secrets import (
    DATABASE_URL_ENV,
    ExchangeCredentials,
    SecretDsn,
    read_exchange_credentials,
)

__all__ = [
    "DATABASE_URL_ENV",
    "ComponentLevels",
    "ConfigFileError",
    "ConnectionSettings",
    "DataCollectionSettings",
    "DatabaseFile",
    "DatabaseSettings",
    "ExchangeCredentials",
    "ExchangeFile",
    "LoggingFile",
    "Problem",
    "SecretDsn",
    "TableNames",
    "TradingPair",
    "WriterSettings",
    "load_database_file",
    "load_exchange_file",
    "load_logging_file",
    "parse_exchange_file",
    "read_exchange_credentials",
]
