// One axis of a Conv/Pool window: output sizes and pads worked out by hand from ONNX's formulas, and the
// taps that read the input.
#include "kernels/reference/window.hpp"

#include <gtest/gtest.h>

#include "aciq/core.hpp"

namespace aciq::kernels::ref {
namespace {

TEST(AxisWindow, ExplicitPadsFloorAndCeil) {
  // 7 inputs, kernel 3, stride 2, pads 1/1: floor((7 + 2 - 3) / 2) + 1 = 4 outputs.
  AxisWindow w = axis_window(7, 3, 2, 1, 1, 1, "NOTSET", false);
  EXPECT_EQ(w.out, 4);
  EXPECT_EQ(w.pad_begin, 1);
  EXPECT_EQ(w.pad_end, 1);
  EXPECT_FALSE(w.ceil_overhang);
  // 6 inputs, kernel 3, stride 2, no pads: floor(3 / 2) + 1 = 2, ceil: 3 with the last window at 4..6,
  // one past the end (an overhang); it starts inside the input, so it is kept.
  EXPECT_EQ(axis_window(6, 3, 2, 1, 0, 0, "NOTSET", false).out, 2);
  w = axis_window(6, 3, 2, 1, 0, 0, "NOTSET", true);
  EXPECT_EQ(w.out, 3);
  EXPECT_TRUE(w.ceil_overhang);
  // 5 inputs, kernel 2, stride 2, pad_end 1: ceil((5 + 1 - 2) / 2) + 1 = 3; a 4th window would start at 6,
  // past the input and its begin padding, and is dropped.
  EXPECT_EQ(axis_window(5, 2, 2, 1, 0, 1, "NOTSET", true).out, 3);
  // Dilation 2 widens kernel 3 to 5: floor((9 - 5) / 1) + 1 = 5.
  EXPECT_EQ(axis_window(9, 3, 1, 2, 0, 0, "NOTSET", false).out, 5);
}

TEST(AxisWindow, AutoPad) {
  // SAME: ceil(7 / 2) = 4 outputs; (4 - 1) * 2 + 3 - 7 = 2 pads, split 1 / 1.
  AxisWindow w = axis_window(7, 3, 2, 1, 9, 9, "SAME_UPPER", false);
  EXPECT_EQ(w.out, 4);
  EXPECT_EQ(w.pad_begin, 1);
  EXPECT_EQ(w.pad_end, 1);
  // 8 inputs: ceil(8 / 2) = 4; (4 - 1) * 2 + 3 - 8 = 1 pad, at the end (UPPER) or the beginning (LOWER).
  w = axis_window(8, 3, 2, 1, 0, 0, "SAME_UPPER", false);
  EXPECT_EQ(w.pad_begin, 0);
  EXPECT_EQ(w.pad_end, 1);
  w = axis_window(8, 3, 2, 1, 0, 0, "SAME_LOWER", false);
  EXPECT_EQ(w.pad_begin, 1);
  EXPECT_EQ(w.pad_end, 0);
  // VALID ignores the pads: floor((7 - 3) / 2) + 1 = 3.
  w = axis_window(7, 3, 2, 1, 5, 5, "VALID", false);
  EXPECT_EQ(w.out, 3);
  EXPECT_EQ(w.pad_begin, 0);
}

TEST(AxisWindow, RefusesWhatCannotRun) {
  EXPECT_THROW(axis_window(2, 3, 1, 1, 0, 0, "NOTSET", false), Error);  // kernel larger than the input
  // VALID with the kernel larger than the input: truncating (2 - 3) / 2 toward zero once gave 1 output.
  EXPECT_THROW(axis_window(2, 3, 2, 1, 0, 0, "VALID", false), Error);
  EXPECT_THROW(axis_window(7, 3, 1, 1, 0, 0, "SAME", false), Error);  // not an auto_pad value
}

TEST(AxisWindow, ValidTapsCountThePaddingOut) {
  // 4 inputs, kernel 3, stride 1, pads 1/1: windows -1..1, 0..2, 1..3, 2..4 read 2, 3, 3, 2 inputs.
  const AxisWindow w = axis_window(4, 3, 1, 1, 1, 1, "NOTSET", false);
  const AxisTaps t = valid_taps(4, 3, 1, 1, w);
  EXPECT_EQ(t.fewest, 2);
  EXPECT_EQ(t.total, 10);
  // Pads as large as the kernel leave a first window of padding only.
  const AxisWindow all_pad = axis_window(4, 2, 1, 1, 2, 0, "NOTSET", false);
  EXPECT_EQ(valid_taps(4, 2, 1, 1, all_pad).fewest, 0);
}

}  // namespace
}  // namespace aciq::kernels::ref
