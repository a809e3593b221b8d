/* corekey: long double arithmetic for INCRBYFLOAT and HINCRBYFLOAT.
 *
 * Valkey computes these in C `long double` (x87 80-bit on x86_64) and prints the result with
 * "%.17Lf" before trimming zeros. Rust has no such type, and the digits differ from f64's
 * (0.1 + 0.2 prints as 0.3 here, 0.30000000000000004 in f64), so this small file does exactly
 * that arithmetic and formatting with the C library. Written for corekey; it follows the
 * behaviour of Valkey's string2ld and ld2string (LD_STR_HUMAN). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK_LD_MAX_CHARS (5 * 1024)

/* Parses a long double the way Valkey's string2ld does. Returns 1 on success. */
static int ck_string2ld(const char *s, size_t slen, long double *dp) {
    char buf[CK_LD_MAX_CHARS];
    long double value;
    char *eptr;

    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';

    errno = 0;
    value = strtold(buf, &eptr);
    /* eptr must reach the end: a NUL inside the text stops strtold short of slen. */
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' || (size_t)(eptr - buf) != slen ||
        ((errno == ERANGE) && (value == HUGE_VALL || value == -HUGE_VALL || fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL || isnan(value))
        return 0;
    *dp = value;
    return 1;
}

/* Formats like ld2string(..., LD_STR_HUMAN); returns the length, 0 when it does not fit. */
static size_t ck_ld2string_human(char *buf, size_t len, long double value) {
    size_t l;
    if (isinf(value)) {
        if (len < 5) return 0;
        if (value > 0) { memcpy(buf, "inf", 3); l = 3; }
        else { memcpy(buf, "-inf", 4); l = 4; }
    } else if (isnan(value)) {
        if (len < 4) return 0;
        memcpy(buf, "nan", 3);
        l = 3;
    } else {
        int n = snprintf(buf, len, "%.17Lf", value);
        if (n < 0 || (size_t)n + 1 > len) return 0;
        l = (size_t)n;
        if (memchr(buf, '.', l) != NULL) {
            char *p = buf + l - 1;
            while (*p == '0') { p--; l--; }
            if (*p == '.') l--;
        }
        if (l == 2 && buf[0] == '-' && buf[1] == '0') { buf[0] = '0'; l = 1; }
    }
    buf[l] = '\0';
    return l;
}

/* current (NULL when the key does not exist) + increment, formatted into out.
 * Returns the length written (may be 0, as Valkey's would be, when it does not fit),
 * -1 when current is not a float, -2 when incr is not a float, -3 on NaN or infinity. */
long ck_ld_incr(const char *cur, size_t curlen, const char *incr, size_t incrlen,
                char *out, size_t outlen) {
    long double value = 0, by;
    if (cur != NULL && !ck_string2ld(cur, curlen, &value)) return -1;
    if (!ck_string2ld(incr, incrlen, &by)) return -2;
    value += by;
    if (isnan(value) || isinf(value)) return -3;
    return (long)ck_ld2string_human(out, outlen, value);
}

/* Whether s parses as a long double (Valkey's string2ld). */
int ck_ld_valid(const char *s, size_t slen) {
    long double v;
    return ck_string2ld(s, slen, &v);
}

/* A blocking command's timeout in seconds (Valkey's getTimeoutFromObjectOrReply with
 * UNIT_SECONDS): milliseconds rounded up into *ms. Returns 0 on success, 1 when the text is
 * not a float, 2 when out of range, 3 when negative. */
int ck_ld_timeout_ms(const char *s, size_t slen, long long *ms) {
    long double v;
    if (!ck_string2ld(s, slen, &v)) return 1;
    v *= 1000.0L;
    if (v > (long double)LLONG_MAX) return 2;
    long long t = (long long)ceill(v);
    if (t < 0) return 3;
    *ms = t;
    return 0;
}
