package clickstream;

import java.nio.charset.StandardCharsets;
import java.time.DateTimeException;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.Arrays;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF3;

/**
 * The common shape of a click event, decided in the JVM: a flat JSON object of plain strings and
 * integers (clickstream_spark/ingest/native.py registers it as a Spark SQL function).
 *
 * <p>Returns the event (row_key, user_id, timestamp_us, url, country, city, browser, os, device)
 * only when the Python contract (clickstream_spark/ingest/contract.py) would call the message
 * valid with exactly that row; null otherwise, and the message goes to the Python parser. So
 * anything unusual (escapes, nesting, floats, timestamps beyond the common ISO forms) is simply
 * not answered here.
 */
public final class NativeEvent implements UDF3<byte[], Long, Long, Row> {
    private static final long serialVersionUID = 1L;

    // Must equal contract.py's MAX_MESSAGE_BYTES, MAX_FIELD_BYTES, MAX_URL_BYTES and
    // event_time.py's MAX_TIMESTAMP_US: the Python tests compare them.
    public static final int MAX_MESSAGE_BYTES = 64 * 1024;
    public static final int MAX_FIELD_BYTES = 256;
    public static final int MAX_URL_BYTES = 8 * 1024;
    public static final long MAX_TIMESTAMP_US = 4102444799999999L;
    private static final int MAX_MEMBERS = 64;

    public static final String[] FIELDS = {
        "row_key", "user_id", "timestamp", "url", "country", "city", "browser", "os", "device"
    };
    private static final int TIMESTAMP = 2;
    private static final int URL = 3;
    // Kinds of a member's value.
    private static final byte ABSENT = 0, STRING = 1, INTEGER = 2, NULL = 3, OTHER = 4;

    @Override
    public Row call(byte[] value, Long firstUs, Long lastUs) {
        if (value == null || value.length > MAX_MESSAGE_BYTES || firstUs == null || lastUs == null) {
            return null;
        }
        return new Scan(value).event(firstUs, lastUs);
    }

    /** One message's bytes, read once from left to right. */
    private static final class Scan {
        private final byte[] b;
        private int i;
        private final byte[] kinds = new byte[FIELDS.length];
        private final int[] starts = new int[FIELDS.length];
        private final int[] ends = new int[FIELDS.length];
        private final int[] keyStarts = new int[MAX_MEMBERS];
        private final int[] keyEnds = new int[MAX_MEMBERS];
        private int members;

        Scan(byte[] b) {
            this.b = b;
        }

        Row event(long firstUs, long lastUs) {
            if (!object()) {
                return null;
            }
            String rowKey = id(0);
            String userId = rowKey == null ? null : id(1);
            if (userId == null) {
                return null;
            }
            Long micros = timestamp();
            if (micros == null || micros < firstUs || micros > lastUs) {
                return null;
            }
            if (kinds[URL] != STRING || blank(URL) || ends[URL] - starts[URL] > MAX_URL_BYTES) {
                return null;
            }
            Object[] row = new Object[FIELDS.length];
            row[0] = rowKey;
            row[1] = userId;
            row[2] = micros;
            row[3] = text(URL);
            for (int f = 4; f < FIELDS.length; f++) {
                if (kinds[f] == ABSENT || kinds[f] == NULL || (kinds[f] == STRING && blank(f))) {
                    row[f] = null;
                } else if (kinds[f] == STRING && ends[f] - starts[f] <= MAX_FIELD_BYTES) {
                    row[f] = text(f);
                } else {
                    return null;
                }
            }
            return RowFactory.create(row);
        }

        /** row_key / user_id: a non-blank string or an integer's text ("-0" is "0"). */
        private String id(int f) {
            if (ends[f] - starts[f] > MAX_FIELD_BYTES) {
                return null;
            }
            if (kinds[f] == STRING) {
                return blank(f) ? null : text(f);
            }
            if (kinds[f] == INTEGER) {
                String digits = text(f);
                return digits.equals("-0") ? "0" : digits;
            }
            return null;
        }

        /** Epoch milliseconds of at most 16 characters, or the ISO profile; null otherwise. */
        private Long timestamp() {
            int s = starts[TIMESTAMP], e = ends[TIMESTAMP];
            if (kinds[TIMESTAMP] == INTEGER) {
                if (e - s > 16 || b[s] == '-') {
                    return null; // over 16 characters, or negative: not valid in Python either
                }
                long ms = 0;
                for (int k = s; k < e; k++) {
                    ms = ms * 10 + (b[k] - '0');
                }
                long micros = ms * 1000; // 16 digits * 1000 < 2^63
                return micros <= MAX_TIMESTAMP_US ? micros : null;
            }
            if (kinds[TIMESTAMP] != STRING) {
                return null;
            }
            return Iso.micros(b, s, e);
        }

        private boolean blank(int f) {
            // A string here holds no control character: blank is only spaces (contract.py's
            // _BLANK is ASCII whitespace; \t \n \r \f \v cannot appear unescaped).
            for (int k = starts[f]; k < ends[f]; k++) {
                if (b[k] != ' ') {
                    return false;
                }
            }
            return true;
        }

        private String text(int f) {
            return new String(b, starts[f], ends[f] - starts[f], StandardCharsets.UTF_8);
        }

        private void ws() {
            while (i < b.length && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r')) {
                i++;
            }
        }

        /** A flat object with plain values and no key twice, and nothing after it. */
        private boolean object() {
            ws();
            if (i >= b.length || b[i] != '{') {
                return false;
            }
            i++;
            ws();
            if (i < b.length && b[i] == '}') {
                return false; // {}: no fields, bad in Python too
            }
            while (true) {
                if (members == MAX_MEMBERS || i >= b.length || b[i] != '"') {
                    return false;
                }
                int keyStart = ++i;
                if (!string()) {
                    return false;
                }
                int keyEnd = i - 1;
                for (int m = 0; m < members; m++) {
                    if (Arrays.equals(b, keyStarts[m], keyEnds[m], b, keyStart, keyEnd)) {
                        return false; // a duplicated key
                    }
                }
                keyStarts[members] = keyStart;
                keyEnds[members] = keyEnd;
                members++;
                ws();
                if (i >= b.length || b[i] != ':') {
                    return false;
                }
                i++;
                ws();
                if (!member(field(keyStart, keyEnd))) {
                    return false;
                }
                ws();
                if (i >= b.length) {
                    return false;
                }
                if (b[i] == '}') {
                    i++;
                    ws();
                    return i == b.length;
                }
                if (b[i] != ',') {
                    return false;
                }
                i++;
                ws();
            }
        }

        private int field(int start, int end) {
            for (int f = 0; f < FIELDS.length; f++) {
                String name = FIELDS[f];
                if (name.length() == end - start) {
                    boolean same = true;
                    for (int k = 0; k < name.length() && same; k++) {
                        same = b[start + k] == name.charAt(k);
                    }
                    if (same) {
                        return f;
                    }
                }
            }
            return -1;
        }

        /** A value: a string, an integer, null, true or false (nothing else here). */
        private boolean member(int f) {
            if (i >= b.length) {
                return false;
            }
            int start = i;
            byte kind;
            byte c = b[i];
            int end;
            if (c == '"') {
                start = ++i;
                if (!string()) {
                    return false;
                }
                kind = STRING;
                end = i - 1; // the text without its quotes
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if (c == '-') {
                    i++;
                }
                if (i >= b.length || b[i] < '0' || b[i] > '9') {
                    return false;
                }
                if (b[i] == '0') {
                    i++;
                } else {
                    while (i < b.length && b[i] >= '0' && b[i] <= '9') {
                        i++;
                    }
                }
                if (i < b.length && (b[i] == '.' || b[i] == 'e' || b[i] == 'E' || (b[i] >= '0' && b[i] <= '9'))) {
                    return false; // a fraction, an exponent or a leading zero
                }
                kind = INTEGER;
                end = i;
            } else if (literal("null")) {
                kind = NULL;
                end = i;
            } else if (literal("true") || literal("false")) {
                kind = OTHER;
                end = i;
            } else {
                return false;
            }
            record(f, kind, start, end);
            return true;
        }

        private void record(int f, byte kind, int start, int end) {
            if (f >= 0) {
                kinds[f] = kind;
                starts[f] = start;
                ends[f] = end;
            }
        }

        private boolean literal(String word) {
            int n = word.length();
            if (i + n > b.length) {
                return false;
            }
            for (int k = 0; k < n; k++) {
                if (b[i + k] != word.charAt(k)) {
                    return false;
                }
            }
            i += n;
            return true;
        }

        /**
         * The rest of a string after its opening quote, up to and past the closing one: no escape,
         * no control character, and well-formed UTF-8 (no overlong form, surrogate or code point
         * past U+10FFFF), as Python's decoder demands.
         */
        private boolean string() {
            while (i < b.length) {
                int c = b[i] & 0xff;
                if (c == '"') {
                    i++;
                    return true;
                }
                if (c == '\\' || c < 0x20) {
                    return false;
                }
                if (c < 0x80) {
                    i++;
                } else if (!utf8(c)) {
                    return false;
                }
            }
            return false;
        }

        private boolean utf8(int c) {
            int n;
            int min;
            if (c >= 0xc2 && c <= 0xdf) {
                n = 1;
                min = 0x80;
            } else if (c >= 0xe0 && c <= 0xef) {
                n = 2;
                min = 0x800;
            } else if (c >= 0xf0 && c <= 0xf4) {
                n = 3;
                min = 0x10000;
            } else {
                return false;
            }
            if (i + n >= b.length) {
                return false;
            }
            int cp = c & (0x3f >> n);
            for (int k = 1; k <= n; k++) {
                int d = b[i + k] & 0xff;
                if ((d & 0xc0) != 0x80) {
                    return false;
                }
                cp = (cp << 6) | (d & 0x3f);
            }
            if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
                return false;
            }
            i += n + 1;
            return true;
        }
    }

    /**
     * The ISO-8601 profile of event_time.py in its common forms: YYYY-MM-DDTHH:MM:SS, an optional
     * fraction of 1 to 6 digits, and Z or +-HH:MM. Other forms (no seconds, more digits) are left
     * to Python. Calendar and clock are checked as Python's datetime does.
     */
    static final class Iso {
        static Long micros(byte[] b, int s, int e) {
            int n = e - s;
            if (n < 20 || b[s + 4] != '-' || b[s + 7] != '-' || b[s + 10] != 'T'
                    || b[s + 13] != ':' || b[s + 16] != ':') {
                return null;
            }
            int year = digits(b, s, 4), month = digits(b, s + 5, 2), day = digits(b, s + 8, 2);
            int hour = digits(b, s + 11, 2), minute = digits(b, s + 14, 2);
            int second = digits(b, s + 17, 2);
            if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) {
                return null;
            }
            int k = s + 19;
            int fraction = 0;
            if (b[k] == '.') {
                int first = ++k;
                while (k < e && b[k] >= '0' && b[k] <= '9') {
                    k++;
                }
                int count = k - first;
                if (count < 1 || count > 6) {
                    return null;
                }
                fraction = digits(b, first, count);
                for (int p = count; p < 6; p++) {
                    fraction *= 10;
                }
            }
            int offsetSeconds;
            if (k == e - 1 && b[k] == 'Z') {
                offsetSeconds = 0;
            } else if (k == e - 6 && (b[k] == '+' || b[k] == '-') && b[k + 3] == ':') {
                int oh = digits(b, k + 1, 2), om = digits(b, k + 4, 2);
                if (oh < 0 || om < 0 || om > 59 || oh > 23) {
                    return null;
                }
                offsetSeconds = (oh * 3600 + om * 60) * (b[k] == '-' ? -1 : 1);
            } else {
                return null;
            }
            if (year < 1 || hour > 23 || minute > 59 || second > 59) {
                return null; // Python: year 0, hour 24, minute 60 or second 60 are errors
            }
            long local;
            try {
                local = LocalDateTime.of(year, month, day, hour, minute, second)
                        .toEpochSecond(ZoneOffset.UTC);
            } catch (DateTimeException invalid) {
                return null; // month 13, 30 February...
            }
            long micros = (local - offsetSeconds) * 1_000_000L + fraction;
            return micros >= 0 && micros <= MAX_TIMESTAMP_US ? micros : null;
        }

        private static int digits(byte[] b, int at, int count) {
            int v = 0;
            for (int k = at; k < at + count; k++) {
                if (k >= b.length || b[k] < '0' || b[k] > '9') {
                    return -1;
                }
                v = v * 10 + (b[k] - '0');
            }
            return v;
        }
    }
}
