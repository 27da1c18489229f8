/*
 * ref_multi.c — the floor for flowlua's HTTP benchmark: N GETs of one URL
 * with libcurl's multi interface, C transfers in flight, one connection
 * pool. Prints "requests N seconds S bytes B".
 *
 *   cc -O2 ref_multi.c -o ref_multi $(pkg-config --cflags --libs libcurl)
 *   ./ref_multi URL N C
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

static size_t total_bytes;

static size_t on_body(char *data, size_t size, size_t n, void *userp) {
  (void)data, (void)userp;
  total_bytes += size * n;
  return size * n;
}

static CURL *make(const char *url) {
  CURL *e = curl_easy_init();
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  return e;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s URL N CONCURRENCY\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  int n = atoi(argv[2]), c = atoi(argv[3]), started = 0, done = 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM *m = curl_multi_init();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (; started < c && started < n; started++) curl_multi_add_handle(m, make(url));
  while (done < n) {
    int running = 0;
    curl_multi_perform(m, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      if (msg->data.result != CURLE_OK) {
        fprintf(stderr, "transfer failed: %s\n", curl_easy_strerror(msg->data.result));
        return 1;
      }
      long status = 0;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      if (status != 200) {
        fprintf(stderr, "HTTP %ld from %s\n", status, url);
        return 1;
      }
      curl_multi_remove_handle(m, msg->easy_handle);
      curl_easy_cleanup(msg->easy_handle);
      done++;
      if (started < n) {
        curl_multi_add_handle(m, make(url));
        started++;
      }
    }
    if (done < n) curl_multi_poll(m, NULL, 0, 1000, NULL);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("requests %d seconds %.6f bytes %zu\n", n, secs, total_bytes);
  curl_multi_cleanup(m);
  curl_global_cleanup();
  return 0;
}
