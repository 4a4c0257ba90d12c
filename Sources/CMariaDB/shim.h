// MariaDB Connector/C. A MYSQL handle and its MYSQL_STMTs must be used by one
// thread at a time; mysql_library_init must run once before threads start.
#include <mysql.h>
